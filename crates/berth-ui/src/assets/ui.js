// Berth web UI: progressive enhancement only. Every page works without this file;
// it reveals copy buttons next to commands (which stay selectable text without it),
// and the close button of a closable banner (closed for the rest of the session).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("[data-banner]")) {
    const key = "banner-closed:" + b.dataset.banner;
    if (sessionStorage.getItem(key)) { b.hidden = true; continue; }
    const x = b.querySelector("button[data-dismiss]");
    if (!x) continue;
    x.hidden = false;
    x.addEventListener("click", () => { sessionStorage.setItem(key, "1"); b.hidden = true; });
  }
  if (!navigator.clipboard) return;
  for (const b of document.querySelectorAll("button[data-copy]")) {
    b.hidden = false;
    b.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(b.dataset.copy);
        const before = b.textContent;
        b.textContent = b.dataset.done || "Copied";
        setTimeout(() => { b.textContent = before; }, 1500);
      } catch (_) { /* the command stays selectable */ }
    });
  }
});
