"""Data Visualizer: statistics and SVG charts for number series, as a LogoMesh plugin."""
from logomesh import plugin, expose, on_event

from chart import bar_chart
from stats import histogram, summary


@plugin
class DataVisualizer:
    def __init__(self, ctx):
        self.ctx = ctx
        self.charts = 0

    @expose
    def summary(self, values):
        return summary(values)

    @expose
    def histogram(self, values, bins=10):
        return histogram(values, bins)

    @expose
    def chart(self, values, bins=10, title=""):
        self.charts += 1
        return bar_chart(histogram(values, bins), title)

    @on_event("data.*")
    async def changed(self, event):
        values = event["data"]["values"]
        await self.ctx.emit("chart.ready", {
            "source": event["topic"],
            "summary": summary(values),
            "svg": bar_chart(histogram(values, 8), event["topic"]),
        })
