"""Data in and out (issue 15): HSDS 3.0 import and export (nested JSON, NDJSON, the CSV tabular
datapackage) and the Spanish spreadsheet template for NGOs that do not speak HSDS.

This layer sits above the domain: every record it writes goes through the domain's own create and
update use cases, so validation, history, audit and the search read model stay in step exactly as
for a write over the API. The command line and the API's import and export routes call it.
"""
