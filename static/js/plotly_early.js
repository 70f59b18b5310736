/**
 * Plotly's start-up is one long task on the main thread (0.7-0.9 s). If Plotly has
 * downloaded while the page's own modules are still on their way, the main thread has
 * nothing else to do: start it now. Once the page runs (playground.js marks "pg:boot"), the
 * page starts Plotly itself, once its first run's maps are painted (map_canvas.js): a run held
 * behind Plotly's start-up would show later. An async module without imports, so it runs as
 * soon as it arrives.
 */

const link = document.querySelector('link[rel="preload"][as="script"]');

function start() {
  if (performance.getEntriesByName("pg:boot").length) return; // the page decides now
  if (document.getElementById("plotly-script")) return;
  const script = document.createElement("script");
  script.id = "plotly-script";
  script.src = link.href;
  script.addEventListener("load", () => performance.mark("pg:plotly-ready"));
  document.head.append(script);
}

// the preload's own load event (a PerformanceObserver reports in an idle task: too late)
if (link && performance.getEntriesByName(link.href).length) start();
else link?.addEventListener("load", start, { once: true });
