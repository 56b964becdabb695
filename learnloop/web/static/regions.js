// A wide table (or the heatmap) scrolls inside its box on a small screen. While it does, the box
// takes keyboard focus and has a name, so it can be scrolled with the arrow keys (WCAG 2.1.1);
// a box that fits gets no extra tab stop. Without JavaScript the box still scrolls by touch.
(function () {
  var fallback = (document.currentScript && document.currentScript.dataset.label) || "Table";
  function name(box) {
    var caption = box.querySelector("caption");
    if (caption && caption.textContent.trim()) return caption.textContent.trim();
    var holder = box.closest("section, article, details");
    var heading = holder && holder.querySelector("h1, h2, h3, summary");
    return heading && heading.textContent.trim() ? heading.textContent.trim() : fallback;
  }
  function update() {
    document.querySelectorAll(".table-wrap, .heatmap-wrap").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        if (!box.hasAttribute("aria-label")) box.setAttribute("aria-label", name(box));
        box.dataset.scrollFocus = "1";
      } else if (!scrolls && box.dataset.scrollFocus) {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        delete box.dataset.scrollFocus;
      }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", update);
  else update();
  window.addEventListener("resize", update);
})();
