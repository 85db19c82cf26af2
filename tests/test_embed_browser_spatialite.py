"""The embeddable map's browser tests (tests/embed_browser.py) on SpatiaLite; its twin file runs
them on PostGIS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.embed_browser import (
    Directory,
    browser,
    page,
    playwright,
    recorder,
    served_directory,
    test_a_category_filter_changes_the_markers_and_the_list,
    test_a_click_on_a_marker_opens_a_popup_with_its_data,
    test_a_partner_key_frames_only_on_the_partners_site,
    test_another_site_cannot_frame_a_partners_map,
    test_axe_finds_no_serious_or_critical_violation,
    test_confidential_sites_never_reach_the_browser,
    test_escape_pressed_less_than_three_times_stays,
    test_quick_exit_leaves_no_way_back,
    test_screenshots_at_phone_and_desktop_widths,
    test_switching_to_english_relabels_the_page_and_the_data,
    test_the_base_map_draws_the_lakes_from_our_tiles,
    test_the_list_is_usable_with_the_keyboard_alone,
    test_the_map_loads_with_a_marker_and_a_list_entry_per_service,
)

__all__ = [
    "browser",
    "page",
    "playwright",
    "recorder",
    "test_a_category_filter_changes_the_markers_and_the_list",
    "test_a_click_on_a_marker_opens_a_popup_with_its_data",
    "test_a_partner_key_frames_only_on_the_partners_site",
    "test_another_site_cannot_frame_a_partners_map",
    "test_axe_finds_no_serious_or_critical_violation",
    "test_confidential_sites_never_reach_the_browser",
    "test_escape_pressed_less_than_three_times_stays",
    "test_quick_exit_leaves_no_way_back",
    "test_screenshots_at_phone_and_desktop_widths",
    "test_switching_to_english_relabels_the_page_and_the_data",
    "test_the_base_map_draws_the_lakes_from_our_tiles",
    "test_the_list_is_usable_with_the_keyboard_alone",
    "test_the_map_loads_with_a_marker_and_a_list_entry_per_service",
]

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def directory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Directory]:
    """The sample network served on spatialite."""
    with served_directory(request, tmp_path_factory, "spatialite") as served:
        yield served
