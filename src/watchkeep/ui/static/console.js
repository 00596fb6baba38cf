// watchkeep console behaviour: plain ES2020, no build step. Loaded with `defer` after htmx
// and uPlot. Pages declare behaviour with data- attributes; nothing here is inline in HTML,
// so the console runs under a CSP with script-src 'self'.
"use strict";
(() => {
  const root = document.documentElement;

  // ---- Theme: light / dark / system, stored in localStorage ---------------------------
  const THEMES = ["light", "dark", "system"];
  const storedTheme = () => {
    try {
      return localStorage.getItem("wk-theme") || "system";
    } catch (_) {
      return "system";
    }
  };
  const applyTheme = (theme) => {
    if (theme === "light" || theme === "dark") root.dataset.theme = theme;
    else delete root.dataset.theme; // the CSS follows prefers-color-scheme
    document.querySelectorAll("[data-theme-toggle]").forEach((button) => {
      button.dataset.themeCurrent = theme;
      button.setAttribute("aria-label", `Theme: ${theme} (change)`);
      button.title = `Theme: ${theme}`;
    });
  };
  applyTheme(storedTheme()); // theme.js did this before paint; this also labels the toggles

  document.addEventListener("click", (event) => {
    const toggle = event.target.closest("[data-theme-toggle]");
    if (!toggle) return;
    const next = THEMES[(THEMES.indexOf(storedTheme()) + 1) % THEMES.length];
    try {
      localStorage.setItem("wk-theme", next);
    } catch (_) {
      // not stored; still applied for this page
    }
    applyTheme(next);
    redrawCharts(); // chart colours come from CSS variables
  });

  // ---- htmx: the CSRF token on every request ------------------------------------------
  document.addEventListener("htmx:configRequest", (event) => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
  });

  // ---- Charts: .wk-chart[data-chart="<id of a JSON script>"] becomes a uPlot ----------
  const charts = new Map(); // element -> {plot, observer}
  // A colour variable resolved to rgb(): the variables hold light-dark(...) pairs, which a
  // canvas cannot read, so a hidden probe element computes the current scheme's colour.
  let probe = null;
  const css = (name) => {
    if (probe === null) {
      probe = document.createElement("span");
      probe.hidden = true;
      document.body.appendChild(probe);
    }
    probe.style.color = `var(${name})`;
    return getComputedStyle(probe).color;
  };
  const PALETTE = ["--wk-chart-1", "--wk-chart-2", "--wk-chart-3", "--wk-chart-4", "--wk-chart-5"];

  const formatter = (unit) => {
    const number = (v, digits) => v.toLocaleString(undefined, { maximumFractionDigits: digits });
    return (v) => {
      if (v == null) return "—";
      if (unit === "$") return `$${number(v, Math.abs(v) < 1 ? 4 : 2)}`;
      if (unit === "%") return `${number(v, 1)}%`; // values are percentages (0-100)
      if (unit === "ms") return `${number(v, v < 10 ? 2 : 0)} ms`;
      return number(v, 3);
    };
  };

  const chartOptions = (spec, width, height) => {
    const axisUnit = (spec.series.find((s) => s.kind !== "threshold") || spec.series[0] || {}).unit || "";
    const axisFormat = formatter(axisUnit);
    let colour = 0;
    const series = spec.series.map((s) => {
      const threshold = s.kind === "threshold";
      const stroke = threshold ? css("--wk-chart-threshold") : css(PALETTE[colour++ % PALETTE.length]);
      const format = formatter(s.unit || "");
      return {
        label: s.label,
        stroke,
        width: threshold ? 1.5 : 2,
        dash: threshold ? [6, 4] : undefined,
        // uPlot draws points only when they are sparse: a lone value between gaps stays visible.
        points: threshold ? { show: false } : {},
        spanGaps: false, // a null is a gap: no data is not zero
        value: (_u, v) => format(v),
      };
    });
    const axis = { stroke: css("--wk-chart-axis"), grid: { stroke: css("--wk-chart-grid"), width: 1 } };
    return {
      width,
      height,
      series: [{}, ...series],
      scales: { x: { time: true } },
      axes: [
        { ...axis },
        { ...axis, label: spec.y_label || undefined, size: 70, values: (_u, ticks) => ticks.map(axisFormat) },
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
  };

  const CHART_HEIGHT = 220;
  const createChart = (el) => {
    const source = document.getElementById(el.dataset.chart);
    if (!source || typeof window.uPlot !== "function") return;
    let spec;
    try {
      spec = JSON.parse(source.textContent);
    } catch (_) {
      return;
    }
    const data = [spec.x, ...spec.series.map((s) => s.values)];
    const height = Number(el.dataset.chartHeight) || CHART_HEIGHT;
    const plot = new window.uPlot(chartOptions(spec, el.clientWidth || 600, height), data, el);
    let lastWidth = el.clientWidth;
    const observer = new ResizeObserver(() => {
      if (el.clientWidth && el.clientWidth !== lastWidth) {
        lastWidth = el.clientWidth; // react to width only: the legend changes the height
        plot.setSize({ width: el.clientWidth, height });
      }
    });
    observer.observe(el);
    charts.set(el, { plot, observer });
  };

  const destroyChart = (el) => {
    const chart = charts.get(el);
    if (!chart) return;
    chart.observer.disconnect();
    chart.plot.destroy();
    charts.delete(el);
  };

  const initCharts = (scope) => {
    for (const el of [...charts.keys()]) if (!el.isConnected) destroyChart(el); // swapped out
    scope.querySelectorAll(".wk-chart[data-chart]").forEach((el) => {
      if (!charts.has(el)) createChart(el);
    });
  };

  function redrawCharts() {
    for (const el of [...charts.keys()]) {
      destroyChart(el);
      if (el.isConnected) createChart(el);
    }
  }
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redrawCharts);

  // htmx removes an element: destroy charts in it before it goes.
  document.addEventListener("htmx:beforeCleanupElement", (event) => {
    const el = event.detail.elt;
    if (charts.has(el)) destroyChart(el);
  });

  // ---- <time datetime=... data-local>: shown in the browser's time zone ---------------
  const localTimes = (scope) => {
    scope.querySelectorAll("time[datetime][data-local]").forEach((el) => {
      const when = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) return;
      if (!el.title) el.title = `${el.getAttribute("datetime")} (UTC)`;
      el.textContent = when.toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
      el.removeAttribute("data-local"); // done once
    });
  };

  // ---- Confirmation: data-confirm="Question?" on a form or a button -------------------
  document.addEventListener(
    "submit",
    (event) => {
      const form = event.target;
      const asker = (event.submitter && event.submitter.closest("[data-confirm]")) || form.closest("[data-confirm]");
      if (asker && !window.confirm(asker.dataset.confirm || "Are you sure?")) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true, // capture: before htmx's own submit handler
  );
  document.addEventListener(
    "click",
    (event) => {
      const el = event.target.closest("[data-confirm]");
      // Submit buttons are asked on submit (above); here: links and htmx buttons.
      if (!el || el.tagName === "FORM" || (el.form && el.type === "submit")) return;
      if (!window.confirm(el.dataset.confirm || "Are you sure?")) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true,
  );

  // ---- Small declarative helpers -----------------------------------------------------
  // <select data-autosubmit> submits its form on change (the project switch; a <noscript>
  // button does it without JavaScript).
  document.addEventListener("change", (event) => {
    const select = event.target.closest("select[data-autosubmit]");
    if (select && select.form) select.form.requestSubmit();
  });
  // data-open-dialog="<id>" (or the "?" button, data-key="?") opens that <dialog>.
  const openDialog = (id) => {
    const dialog = document.getElementById(id);
    if (dialog && typeof dialog.showModal === "function" && !dialog.open) dialog.showModal();
    return Boolean(dialog);
  };
  document.addEventListener("click", (event) => {
    const opener = event.target.closest('[data-open-dialog], [data-key="?"]');
    if (opener) openDialog(opener.dataset.openDialog || "wk-shortcuts");
  });

  // ---- Keyboard shortcuts --------------------------------------------------------------
  const typing = (el) =>
    el instanceof HTMLElement &&
    (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  let goPending = false;
  let goTimer = 0;

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.altKey || event.metaKey || event.defaultPrevented) return;
    if (typing(event.target) || document.querySelector("dialog[open]")) return;
    const key = event.key;
    if (goPending) {
      goPending = false;
      clearTimeout(goTimer);
      const link = document.querySelector(`[data-nav-key="${CSS.escape(key)}"]`);
      if (link) {
        event.preventDefault();
        link.click();
      }
      return;
    }
    if (key === "/") {
      const search = document.querySelector("[data-search]");
      if (search) {
        event.preventDefault();
        search.focus();
        if (typeof search.select === "function") search.select();
      }
      return;
    }
    if (key === "?") {
      if (openDialog("wk-shortcuts")) event.preventDefault();
      return;
    }
    if (key === "g") {
      goPending = true;
      goTimer = setTimeout(() => (goPending = false), 1500);
      return;
    }
    const target = [...document.querySelectorAll(`[data-key="${CSS.escape(key)}"]`)].find(
      (el) => !el.disabled && el.getClientRects().length > 0, // enabled and visible
    );
    if (target) {
      event.preventDefault();
      target.click();
    }
  });

  // ---- Start, and again after each htmx swap -----------------------------------------
  const settle = (scope) => {
    initCharts(scope);
    localTimes(scope);
  };
  settle(document);
  // The whole document: a swap may replace its own target (outerHTML); charts are few.
  document.addEventListener("htmx:afterSettle", () => settle(document));
})();
