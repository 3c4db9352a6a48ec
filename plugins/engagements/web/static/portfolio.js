// Inside Airflow's UI the portfolio is shown in a frame that may not navigate the whole page.
// Links to Airflow's own pages (data-airflow) then move Airflow's UI instead of opening it
// inside the frame; without a frame, or if that fails, they are ordinary links.
"use strict";
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-airflow]");
  if (!link || window.top === window || event.button !== 0 || event.ctrlKey || event.metaKey) {
    return;
  }
  try {
    const top = window.top;
    if (top.location.origin !== window.location.origin) return;
    top.history.pushState(null, "", link.href);
    top.dispatchEvent(new PopStateEvent("popstate"));
    event.preventDefault();
  } catch (error) {
    // Not allowed to reach the page around the frame: follow the link in the frame.
  }
});
