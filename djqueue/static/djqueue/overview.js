/* The task queue overview: renders the figures the server sends as JSON, and fetches
 * them again every few seconds while the tab is shown and the page is live.
 *
 * Everything from the server is put into the page as text (textContent, attributes),
 * never as markup: task, queue and worker names come from rows other programs may write.
 */
(function () {
  "use strict";

  const root = document.querySelector(".djq-overview");
  if (!root) return;
  const dataUrl = root.dataset.url;
  const every = Number(root.dataset.refresh || 5) * 1000;
  const palette = ["#417690", "#e0a800", "#8e44ad", "#3a7d44", "#ba2121", "#16a085", "#d35400", "#2c3e50"];
  let data = JSON.parse(document.getElementById("djq-initial").textContent);
  let range = data.range;
  let live = true;
  let timer = null;
  let updates = 0;
  const charts = {};

  // Small DOM helpers ------------------------------------------------------------------

  function node(tag, props, children) {
    const element = document.createElement(tag);
    Object.entries(props || {}).forEach(([key, value]) => {
      if (key === "text") element.textContent = value;
      else if (key === "className") element.className = value;
      else element.setAttribute(key, value);
    });
    (children || []).forEach((child) => element.append(child));
    return element;
  }

  function link(text, href, className) {
    return node("a", { href: href, text: String(text), className: className || "" });
  }

  function cell(content, className) {
    const td = node("td", { className: className || "" });
    td.append(content === null || content === undefined ? "–" : content);
    return td;
  }

  function seconds(value) {
    if (value === null || value === undefined) return "–";
    if (value < 1) return (value * 1000).toFixed(value < 0.01 ? 1 : 0) + " ms";
    if (value < 120) return value.toFixed(value < 10 ? 2 : 1) + " s";
    if (value < 7200) return (value / 60).toFixed(1) + " min";
    return (value / 3600).toFixed(1) + " h";
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + " %";
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function label(iso) {
    const at = new Date(iso);
    const time = pad(at.getHours()) + ":" + pad(at.getMinutes());
    if (range !== "week") return time;
    return at.toLocaleDateString(undefined, { weekday: "short" }) + " " + time;
  }

  // The job list for one bin of a series: its URL with the bin's window added.
  function binUrl(series, chart, index) {
    const start = new Date(chart.bins[index]);
    const end = new Date(start.getTime() + chart.step * 1000);
    const url = new URL(series.url, window.location.href);
    if (series.field) {
      url.searchParams.set(series.field + "__gte", start.toISOString());
      url.searchParams.set(series.field + "__lt", end.toISOString());
    }
    return url.pathname + url.search;
  }

  function windowUrl(series) {
    const url = new URL(series.url, window.location.href);
    if (series.field) {
      url.searchParams.set(series.field + "__gte", new Date(data.start).toISOString());
      url.searchParams.set(series.field + "__lt", new Date(data.end).toISOString());
    }
    return url.pathname + url.search;
  }

  // Rendering ----------------------------------------------------------------------------

  function renderAlerts() {
    const list = document.getElementById("djq-alerts");
    const items = data.alerts.map((alert) =>
      node("li", { className: alert.level, "data-kind": alert.kind }, [
        alert.text + " ",
        link("Show the jobs", alert.url),
      ]),
    );
    if (!items.length) items.push(node("li", { className: "ok", text: "Nothing needs attention." }));
    list.replaceChildren(...items);
  }

  function figure(value, caption, href, id) {
    const content = node("div", {}, [
      node("div", { className: "value", text: String(value) }),
      node("div", { className: "label", text: caption }),
    ]);
    const box = node("div", { className: "djq-figure", id: id });
    if (href) {
      const anchor = link("", href);
      anchor.append(content);
      box.append(anchor);
    } else {
      box.append(content);
    }
    return box;
  }

  function renderFigures() {
    const f = data.figures;
    const boxes = f.outcomes.map((o) =>
      figure(o.count.toLocaleString(), o.name.toLowerCase(), o.url, "djq-figure-" + o.name),
    );
    boxes.push(figure(percent(f.failure_rate), "failure rate", f.failure_url, "djq-figure-failure-rate"));
    ["p50", "p95", "p99"].forEach((p) =>
      boxes.push(figure(seconds(f.runtime[p]), "runtime " + p, f.ended_url, "djq-figure-runtime-" + p)),
    );
    ["p50", "p95", "p99"].forEach((p) =>
      boxes.push(figure(seconds(f.wait[p]), "wait " + p, f.ended_url, "djq-figure-wait-" + p)),
    );
    document.getElementById("djq-figures").replaceChildren(...boxes);
  }

  function legend(id, chart, colourOf) {
    const items = chart.series.map((series, n) => {
      const total = series.values.reduce((sum, v) => sum + (v || 0), 0);
      const swatch = node("span", { className: "swatch", style: "background:" + colourOf(series, n) });
      const anchor = link(series.name || "(all)", windowUrl(series));
      anchor.setAttribute("data-series", series.name);
      return node("li", {}, [swatch, anchor, " " + (id === "djq-throughput-legend" ? "(" + total.toLocaleString() + ")" : "")]);
    });
    document.getElementById(id).replaceChildren(...items);
  }

  function drawChart(key, canvasId, type, chart, colourOf) {
    if (typeof window.Chart === "undefined") return;
    const datasets = chart.series.map((series, n) => ({
      label: series.name,
      data: series.values,
      backgroundColor: colourOf(series, n),
      borderColor: colourOf(series, n),
      borderWidth: type === "line" ? 2 : 0,
      pointRadius: 0,
      spanGaps: false,
    }));
    const labels = chart.bins.map(label);
    if (charts[key]) {
      charts[key].data.labels = labels;
      charts[key].data.datasets = datasets;
      charts[key].$djq = chart;
      charts[key].update("none");
      return;
    }
    const stacked = type === "bar";
    charts[key] = new window.Chart(document.getElementById(canvasId), {
      type: type,
      data: { labels: labels, datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: type === "bar" },
        plugins: { legend: { display: false } },
        scales: {
          x: { stacked: stacked, ticks: { maxTicksLimit: 12, autoSkip: true } },
          y: { stacked: stacked, beginAtZero: true, ticks: { precision: 0 } },
        },
        onHover: (event, elements) => {
          event.native.target.style.cursor = elements.length ? "pointer" : "default";
        },
        onClick: (event, elements, instance) => {
          if (!elements.length) return;
          const hit = elements[0];
          const shown = instance.$djq;
          window.location.href = binUrl(shown.series[hit.datasetIndex], shown, hit.index);
        },
      },
    });
    charts[key].$djq = chart;
  }

  function outcomeColour(series) {
    return series.colour;
  }

  function queueColour(series, n) {
    return palette[n % palette.length];
  }

  function renderCharts() {
    drawChart("throughput", "djq-throughput-chart", "bar", data.throughput, outcomeColour);
    legend("djq-throughput-legend", data.throughput, outcomeColour);
    drawChart("depth", "djq-depth-chart", "line", data.depth, queueColour);
    legend("djq-depth-legend", data.depth, queueColour);
  }

  function renderQueues() {
    const rows = data.queues.map((q) => {
      let stateText = "served";
      let stateClass = "";
      if (q.paused) {
        stateText = "paused";
        stateClass = "djq-paused";
      } else if (!q.workers && q.waiting) {
        stateText = "no live worker";
        stateClass = "djq-bad";
      }
      const row = node("tr", { "data-queue": q.queue }, [
        cell(q.queue),
        cell(link(q.waiting.toLocaleString(), q.waiting_url, "djq-due"), "num"),
        cell(seconds(q.oldest_seconds), "num"),
        cell(link(q.scheduled.toLocaleString(), q.waiting_url), "num"),
        cell(link(q.reserved.toLocaleString(), q.held_url), "num"),
        cell(link(q.running.toLocaleString(), q.held_url), "num"),
        cell(String(q.workers), "num"),
        cell(node("span", { className: stateClass, text: stateText })),
      ]);
      return row;
    });
    if (!rows.length) rows.push(node("tr", {}, [node("td", { colspan: "8", text: "No jobs waiting or running." })]));
    document.getElementById("djq-queues").replaceChildren(...rows);
  }

  function renderTasks() {
    const rows = data.tasks.map((t) =>
      node("tr", { "data-task": t.task }, [
        cell(t.task),
        cell(link(t.ended.toLocaleString(), t.ended_url), "num"),
        cell(link(t.failed.toLocaleString(), t.failed_url, t.failed ? "djq-bad" : ""), "num"),
        cell(percent(t.failure_rate), "num"),
        cell(seconds(t.runtime.p50), "num"),
        cell(seconds(t.runtime.p95), "num"),
        cell(seconds(t.wait.p50), "num"),
        cell(seconds(t.wait.p95), "num"),
      ]),
    );
    if (!rows.length) rows.push(node("tr", {}, [node("td", { colspan: "8", text: "No job ended in this range." })]));
    document.getElementById("djq-tasks").replaceChildren(...rows);
  }

  function renderWorkers() {
    const line = document.getElementById("workers");
    if (!line) return;
    if (!data.workers) {
      line.replaceChildren();
      return;
    }
    line.replaceChildren("Live workers: ", link(String(data.workers.live), data.workers.url));
  }

  function renderControls() {
    root.querySelectorAll("[data-range]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.range === range));
    });
    const toggle = document.getElementById("djq-live");
    toggle.setAttribute("aria-pressed", String(live));
    toggle.textContent = live ? "Live" : "Paused";
  }

  function status(text) {
    document.getElementById("djq-status").textContent = text;
  }

  function render() {
    renderAlerts();
    renderFigures();
    renderCharts();
    renderQueues();
    renderTasks();
    renderWorkers();
    renderControls();
    root.dataset.updates = String(updates);
    showUpdated();
  }

  function showUpdated() {
    const at = new Date(data.now);
    const when = pad(at.getHours()) + ":" + pad(at.getMinutes()) + ":" + pad(at.getSeconds());
    const series = data.rolled_up ? "" : " No time series yet: charts fill in once a worker has run for a minute.";
    status("Updated " + when + (live ? "" : "; paused") + "." + series);
  }

  // Updating -----------------------------------------------------------------------------

  async function refresh() {
    const url = new URL(dataUrl, window.location.href);
    url.searchParams.set("range", range);
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (error) {
      status("Could not reach the server; trying again.");
      return;
    }
    const json = (response.headers.get("Content-Type") || "").startsWith("application/json");
    if (!response.ok || !json) {
      // A JSON error (missing tables, say) says what is wrong; show its words.
      const said = json ? ((await response.json().catch(() => ({}))).error || "") : "";
      status(
        response.status === 403
          ? "You may no longer view jobs."
          : said
            ? "Not updated: " + said
            : "Not updated (the server answered " + response.status + "); reload the page if this lasts.",
      );
      return;
    }
    data = await response.json();
    updates += 1;
    render();
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (live && !document.hidden) timer = setTimeout(tick, every);
  }

  async function tick() {
    await refresh();
    schedule();
  }

  document.getElementById("djq-live").addEventListener("click", () => {
    live = !live;
    renderControls();
    showUpdated();
    if (live) tick();
    else schedule();
  });

  root.querySelectorAll("[data-range]").forEach((button) => {
    button.addEventListener("click", () => {
      range = button.dataset.range;
      const here = new URL(window.location.href);
      here.searchParams.set("range", range);
      window.history.replaceState(null, "", here);
      renderControls();
      refresh().then(schedule);
    });
  });

  // A hidden tab asks nothing of the server; it catches up as soon as it is shown.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) schedule();
    else if (live) tick();
  });

  // The fleet controls ask before they post (the shutdown has its tick box instead).
  for (const button of root.querySelectorAll("#djq-fleet button[data-confirm]")) {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  }

  render();
  schedule();
})();
