"""referral-net: a geospatial referral directory and needs-matching API (Open Referral HSDS 3.0)."""

__version__ = "0.1.0"
