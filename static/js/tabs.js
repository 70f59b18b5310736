/**
 * The view tabs (Run, Inspect, Code, Share) as an ARIA tablist: click or arrow keys,
 * Home/End. Tabs hidden by the link's hide= flags are left out.
 */

export class Tabs extends EventTarget {
  constructor(root, hidden) {
    super();
    this.tabs = [...root.querySelectorAll('[role="tab"]')];
    for (const tab of this.tabs) {
      if (hidden.has(tab.dataset.tab)) {
        tab.hidden = true;
        document.getElementById(tab.getAttribute("aria-controls")).hidden = true;
      }
      tab.addEventListener("click", () => this.show(tab.dataset.tab, true));
      tab.addEventListener("keydown", (e) => this.onKey(e));
    }
    this.current = null;
  }

  visibleTabs() {
    return this.tabs.filter((t) => !t.hidden);
  }

  show(name, focus = false) {
    const tabs = this.visibleTabs();
    const tab = tabs.find((t) => t.dataset.tab === name) || tabs[0];
    if (!tab) return;
    for (const t of this.tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      const panel = document.getElementById(t.getAttribute("aria-controls"));
      if (!t.hidden) panel.hidden = !on;
    }
    if (focus) tab.focus();
    if (this.current !== tab.dataset.tab) {
      this.current = tab.dataset.tab;
      this.dispatchEvent(new CustomEvent("show", { detail: this.current }));
    }
  }

  onKey(e) {
    const tabs = this.visibleTabs();
    const i = tabs.indexOf(e.currentTarget);
    let next = null;
    if (e.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
    else if (e.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
    else if (e.key === "Home") next = tabs[0];
    else if (e.key === "End") next = tabs[tabs.length - 1];
    if (next) {
      e.preventDefault();
      this.show(next.dataset.tab, true);
    }
  }
}
