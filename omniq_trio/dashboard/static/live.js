// The dashboard's only script: refreshes the page regions marked data-live
// (fetching this same page and swapping them in), shows whether the page is
// live, and asks before the actions whose forms carry data-confirm.
(function () {
  "use strict";

  const every = Number(document.body.dataset.refresh) || 2000;
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
    timer = setTimeout(refresh, every);
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
