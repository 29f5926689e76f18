"""A bar chart of a histogram as a standalone SVG document."""
from html import escape


def bar_chart(hist, title="", width=480, height=240):
    counts, edges = hist["counts"], hist["edges"]
    top = max(counts) or 1
    pad, bar_w = 24, (width - 48) / len(counts)
    bars = []
    for i, c in enumerate(counts):
        h = (height - 2 * pad) * c / top
        x, y = pad + i * bar_w, height - pad - h
        label = f"{edges[i]:.3g}–{edges[i + 1]:.3g}: {c}"
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" fill="#4c78a8">'
            f"<title>{escape(label)}</title></rect>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<text x="{pad}" y="16" font-family="sans-serif" font-size="12">{escape(title)}</text>'
        + "".join(bars)
        + "</svg>"
    )
