// The dashboard's only script: refreshes the page regions marked data-live
// (fetching this same page and swapping them in), shows whether the page is
// live, and asks before the actions whose forms carry data-confirm.
(function () {
  "use strict";

  const every = Number(document.body.dataset.refresh) || 2000;
  // a store slow to answer (a huge one, a loaded database) is asked less often:
  // the next refresh waits at least four times as long as the last one took
  const SLOWDOWN = 4;
  let wait = every;
  const indicator = document.getElementById("live-status");
  let timer = null;
  let busy = false;

  function show(state, text) {
    if (indicator) {
      indicator.dataset.state = state;
      indicator.textContent = text;
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, wait);
  }

  function focusedIn(region) {
    const active = document.activeElement;
    return active && active !== document.body && region.contains(active);
  }

  async function refresh() {
    if (busy || document.hidden) {
      schedule();
      return;
    }
    busy = true;
    const started = performance.now();
    try {
      const response = await fetch(location.href, {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 401) {
        show("ended", "session ended");
        return; // no more refreshes: the token is needed again
      }
      if (!response.ok || response.redirected) {
        show("error", "not updated");
      } else {
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
        for (const region of document.querySelectorAll("[data-live]")) {
          const next = fresh.getElementById(region.id);
          if (next && !focusedIn(region) && next.innerHTML !== region.innerHTML) {
            region.innerHTML = next.innerHTML;
          }
        }
        document.title = fresh.title;
        show("live", "live");
      }
    } catch (error) {
      show("error", "offline");
    } finally {
      busy = false;
      wait = Math.max(every, SLOWDOWN * (performance.now() - started));
    }
    schedule();
  }

  document.addEventListener("submit", function (event) {
    const question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // an action's notice shows once: a reload or a refresh does not repeat it
  const url = new URL(location.href);
  if (url.searchParams.has("notice")) {
    url.searchParams.delete("notice");
    url.searchParams.delete("n");
    history.replaceState(null, "", url.pathname + url.search);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      refresh();
    }
  });
  if (document.querySelector("[data-live]")) {
    schedule();
  } else {
    show("static", "");
  }
})();
