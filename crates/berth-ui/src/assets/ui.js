// Berth web UI: progressive enhancement only. Every page works without this file;
// it reveals copy buttons next to commands (which stay selectable text without it).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
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
