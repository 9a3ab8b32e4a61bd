// Run: a template and its generated form, or a pasted API-format workflow. One Idempotency-Key per
// form state, so a double click (or a retry) is the same request and makes one job.

import { api } from "./api.js";
import { h, problemView, replace } from "./dom.js";
import { clearFieldErrors, paramsJson, showFieldErrors, templateForm, uploadsPending } from "./form.js";

function newKey() {
  return crypto.randomUUID();
}

export async function runView(view, { navigate, query }) {
  const status = h("div", { id: "run-problem", class: "problem", role: "alert", tabindex: "-1", hidden: true });
  const templateSelect = h("select", { id: "template", name: "template" });
  const formSlot = h("div", { id: "template-form" });
  const workflowText = h("textarea", {
    id: "workflow",
    name: "workflow",
    rows: 14,
    spellcheck: "false",
    "aria-describedby": "workflow-help",
    placeholder: '{"3": {"class_type": "KSampler", "inputs": {...}}, ...}',
  });
  const submit = h("button", { type: "submit", id: "run-submit", class: "primary" }, "Run");
  const modeTemplate = h("input", { type: "radio", name: "mode", id: "mode-template", value: "template", checked: true });
  const modeWorkflow = h("input", { type: "radio", name: "mode", id: "mode-workflow", value: "workflow" });
  const templateSection = h("div", { id: "template-section" }, h("label", { for: "template" }, "Template"), templateSelect, h("p", { class: "help", id: "template-description" }), formSlot);
  const workflowSection = h(
    "div",
    { id: "workflow-section", hidden: true },
    h("label", { for: "workflow" }, "Workflow (API format)"),
    workflowText,
    h("p", { class: "help", id: "workflow-help" }, "In ComfyUI: Workflow → Export (API). The graph of node id → {class_type, inputs}."),
  );
  const form = h(
    "form",
    { id: "run-form", novalidate: true },
    h("fieldset", { class: "modes" }, h("legend", {}, "What to run"),
      h("label", { for: "mode-template" }, modeTemplate, " A template"),
      h("label", { for: "mode-workflow" }, modeWorkflow, " A workflow")),
    templateSection,
    workflowSection,
    status,
    h("div", { class: "actions" }, submit, h("span", { id: "run-note", class: "note", "aria-live": "polite" })),
  );
  replace(view, h("section", { class: "panel" }, h("h1", {}, "Run"), form));

  let idempotencyKey = newKey();
  let current = null; // {template, kinds}
  const changed = () => {
    idempotencyKey = newKey();
  };
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);

  const mode = () => (modeWorkflow.checked ? "workflow" : "template");
  const showMode = () => {
    templateSection.hidden = mode() !== "template";
    workflowSection.hidden = mode() !== "workflow";
    status.hidden = true;
  };
  modeTemplate.addEventListener("change", showMode);
  modeWorkflow.addEventListener("change", showMode);

  const loadTemplate = async (name) => {
    status.hidden = true;
    try {
      const { data: template } = await api.template(name);
      const built = templateForm(template, { onChange: changed });
      current = { template, kinds: built.kinds, element: built.element };
      document.getElementById("template-description").textContent = template.description || "";
      replace(formSlot, built.element);
    } catch (error) {
      replace(status, problemView(error.problem || { title: String(error) }));
      status.hidden = false;
    }
  };
  templateSelect.addEventListener("change", () => loadTemplate(templateSelect.value));

  try {
    const { data } = await api.templates();
    for (const template of data.items) templateSelect.append(h("option", { value: template.name }, template.name));
    // The one asked for (from Templates), else txt2img, the one that needs no upload.
    const wanted = [query.get("template"), "txt2img"].find((name) => data.items.some((t) => t.name === name));
    if (wanted) templateSelect.value = wanted;
    if (data.items.length) await loadTemplate(templateSelect.value);
  } catch (error) {
    replace(status, problemView(error.problem || { title: String(error) }));
    status.hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    status.hidden = true;
    let body;
    let prefix;
    if (mode() === "template") {
      if (!current) return;
      if (uploadsPending(formSlot)) {
        replace(status, problemView({ title: "An upload is still in progress", detail: "Wait for it to finish, then run." }));
        status.hidden = false;
        return;
      }
      clearFieldErrors(formSlot);
      body = `{"template":${JSON.stringify(current.template.name)},"params":${paramsJson(formSlot, current.kinds)}}`;
      prefix = "/params/";
    } else {
      let graph;
      try {
        graph = JSON.parse(workflowText.value);
      } catch (error) {
        replace(status, problemView({ title: "The workflow is not JSON", detail: error.message }));
        status.hidden = false;
        workflowText.setAttribute("aria-invalid", "true");
        workflowText.focus();
        return;
      }
      workflowText.removeAttribute("aria-invalid");
      body = JSON.stringify({ workflow: graph });
      prefix = null;
    }
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    try {
      const { data: job, response } = await api.submit(body, idempotencyKey);
      const replayed = response.headers.get("Idempotent-Replayed") === "true";
      navigate(`#/jobs/${job.job_id}`, replayed ? "This form was already submitted: here is the job it made. Change a value to run another." : null);
    } catch (error) {
      const problem = error.problem || { title: String(error) };
      const unplaced = prefix ? showFieldErrors(formSlot, problem, prefix) : problem.errors || [];
      replace(status, problemView({ ...problem, errors: unplaced }));
      status.hidden = false;
      status.focus();
    } finally {
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
    }
  });
}
