"""docs/SECURITY.md's attack table is the probes' committed results (bench/service_table.py)."""

import copy

from bench import service_table


def test_the_document_holds_the_current_table():
    assert service_table.main(["--check"]) == 0


def test_every_row_reads_its_number_from_the_results():
    attack, fuzz, soak = (service_table.load(n) for n in ("attack", "fuzz", "soak"))
    before = dict(service_table.rows(attack, fuzz, soak))
    fuzz2, soak2 = copy.deepcopy(fuzz), copy.deepcopy(soak)
    fuzz2["http_500"] = 17
    soak2["rss_growth_after_warm_up_mb"] = 987.6
    after = dict(service_table.rows(attack, fuzz2, soak2))
    changed = [k for k in before if before[k] != after[k]]
    assert len(changed) == 2
    assert any("17 HTTP 500" in after[k] for k in changed)
    assert any("987.6 MB" in after[k] for k in changed)


def test_a_document_without_markers_is_refused_by_name():
    try:
        service_table.with_table("# no table here\n")
    except ValueError as e:
        assert "service-table:start" in str(e)
    else:
        raise AssertionError("accepted a document without markers")
