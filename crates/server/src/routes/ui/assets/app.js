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
    // A sum other than 100% is refused before the form leaves the page.
    const form = sum.closest("form");
    if (form) form.addEventListener("submit", (event) => {
      update();
      if (sum.className === "field-error") {
        event.preventDefault();
        sum.setAttribute("role", "alert");
        sum.textContent = "Not saved: " + sum.textContent;
        const first = inputs()[0];
        if (first) first.focus();
      }
    });
  }
  // Condition rows: the hint follows the chosen operator.
  document.querySelectorAll("[data-hint-for]").forEach((hint) => {
    const select = document.getElementById(hint.dataset.hintFor);
    if (!select) return;
    const hints = {
      cohort: "Key: the other cohort's id. Value and window are not used.",
      multiple: "Key: the event name. Value: N, how many times. Window: how far back to count.",
      event: "Key: the event name. Window: how far back to look. Value is not used.",
    };
    select.addEventListener("change", () => {
      const op = select.value;
      if (op.endsWith("in_cohort")) hint.textContent = hints.cohort;
      else if (op.startsWith("performed_event_multiple")) hint.textContent = hints.multiple;
      else if (op.endsWith("performed_event")) hint.textContent = hints.event;
      else hint.textContent = "Key: a person property. Value: " + (select.selectedOptions[0].dataset.hint || "text") + ". Window is not used.";
    });
  });
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
  // Copy buttons: the value of the input (or the text of the element) they name.
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const target = document.getElementById(button.dataset.copy);
      if (!target) return;
      const text = "value" in target && target.tagName === "INPUT" ? target.value : target.textContent;
      const label = button.textContent;
      try { await navigator.clipboard.writeText(text); button.textContent = "Copied ✓"; }
      catch (e) {
        if (target.select) target.select();
        button.textContent = "Select and copy (Ctrl+C)";
      }
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  });
});
