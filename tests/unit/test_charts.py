from djqueue.ops import charts


def test_line_chart_escapes_labels_and_draws_each_series() -> None:
    svg = charts.line_chart(
        ["<b>10:00</b>", "10:01"],
        [charts.Series("ok <i>", "#417690", [1, 5]), charts.Series("failed", "#ba2121", [0, 2])],
        title="t<script>",
    )
    assert svg.count("<polyline") == 2
    assert "<b>" not in svg and "&lt;b&gt;10:00&lt;/b&gt;" in svg
    assert "<script>" not in svg and "<i>" not in svg
    assert ">5<" in svg  # the peak is labelled


def test_empty_chart_still_renders() -> None:
    svg = charts.line_chart([], [charts.Series("ok", "#000", [])], title="none")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
