// Vexil web UI: progressive enhancements only; every page works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The variant editor's live sum check.
  const sum = document.getElementById("variant-sum");
  if (sum) {
    const inputs = () => Array.from(document.querySelectorAll("input[name=variant_rollout]"));
    const keys = () => Array.from(document.querySelectorAll("input[name=variant_key]"));
    const update = () => {
      let total = 0, used = 0;
      inputs().forEach((input, i) => {
        if (keys()[i] && keys()[i].value.trim() !== "") { used++; total += Number(input.value || 0); }
      });
      if (used === 0) { sum.textContent = "No variants: a boolean flag."; sum.className = "hint"; return; }
      const ok = Math.abs(total - 100) < 1e-9;
      sum.textContent = "Variant rollout sums to " + total + "%" + (ok ? " ✓" : " — it must be 100%");
      sum.className = ok ? "hint" : "field-error";
    };
    document.querySelectorAll("input[name=variant_rollout], input[name=variant_key]")
      .forEach((el) => el.addEventListener("input", update));
    update();
  }
  // JSON fields: say at once whether the text parses.
  document.querySelectorAll("textarea[data-json]").forEach((area) => {
    const note = document.getElementById(area.id + "-check");
    const check = () => {
      if (!note) return;
      const text = area.value.trim();
      if (text === "") { note.textContent = ""; area.removeAttribute("aria-invalid"); return; }
      try { JSON.parse(text); note.textContent = "Valid JSON ✓"; note.className = "hint"; area.removeAttribute("aria-invalid"); }
      catch (e) { note.textContent = "Not valid JSON: " + e.message; note.className = "field-error"; area.setAttribute("aria-invalid", "true"); }
    };
    area.addEventListener("input", check);
    check();
  });
});
