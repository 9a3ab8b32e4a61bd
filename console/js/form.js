// A form generated from a template's JSON Schema: numbers with their ranges, choices as selects,
// upload:// params as file pickers that upload through POST /v1/uploads, long strings as text areas.

import { api, sendUpload } from "./api.js";
import { h, showProblem } from "./dom.js";

const UPLOAD_PATTERN = /^\^?upload:\/\//;

export function isUpload(schema) {
  return schema.type === "string" && typeof schema.pattern === "string" && UPLOAD_PATTERN.test(schema.pattern);
}

function rangeHint(schema) {
  const parts = [];
  if (schema.minimum !== undefined && schema.maximum !== undefined && schema.maximum < 1e15) {
    parts.push(`${schema.minimum} to ${schema.maximum}`);
  } else if (schema.minimum !== undefined) {
    parts.push(`at least ${schema.minimum}`);
  }
  if (schema.multipleOf !== undefined) parts.push(`a multiple of ${schema.multipleOf}`);
  if (schema.default !== undefined && schema.default !== "") parts.push(`default ${schema.default}`);
  return parts.join(", ");
}

function control(name, schema, required, id) {
  const common = { id, name, "aria-describedby": `${id}-help ${id}-error`, required };
  if (Array.isArray(schema.enum)) {
    return h(
      "select",
      common,
      required || schema.default !== undefined ? null : h("option", { value: "" }, "(default)"),
      schema.enum.map((choice) =>
        h("option", { value: String(choice), selected: choice === schema.default }, String(choice)),
      ),
    );
  }
  if (schema.type === "integer" || schema.type === "number") {
    return h("input", {
      ...common,
      type: "number",
      inputmode: schema.type === "integer" ? "numeric" : "decimal",
      min: schema.minimum,
      max: schema.maximum !== undefined && schema.maximum < 1e15 ? schema.maximum : undefined,
      step: schema.multipleOf ?? (schema.type === "integer" ? 1 : "any"),
      value: schema.default,
      placeholder: schema.default === undefined ? "random when empty" : undefined,
    });
  }
  if (schema.type === "boolean") {
    return h("input", { ...common, type: "checkbox", checked: schema.default === true });
  }
  if (schema.type === "string" && (schema.maxLength === undefined || schema.maxLength > 300)) {
    return h("textarea", { ...common, rows: name.includes("negative") ? 2 : 3 }, schema.default ?? "");
  }
  return h("input", { ...common, type: "text", value: schema.default ?? "" });
}

// An upload field: a file picker that uploads at once and keeps the upload:// reference it got.
function uploadControl(name, id, required, errorBox) {
  const hidden = h("input", { type: "hidden", name, "data-upload": "" });
  const state = h("span", { class: "upload-state", id: `${id}-state`, "aria-live": "polite" }, "no file yet");
  const picker = h("input", {
    id,
    type: "file",
    accept: "image/*",
    required,
    "aria-describedby": `${id}-help ${id}-state ${id}-error`,
    onchange: async () => {
      const file = picker.files[0];
      hidden.value = "";
      if (!file) return;
      state.textContent = `uploading ${file.name}…`;
      hidden.dataset.pending = "true";
      try {
        const { data: ticket } = await api.upload(file.type || "application/octet-stream", file.name);
        await sendUpload(ticket, file);
        hidden.value = ticket.ref;
        state.textContent = `uploaded as ${ticket.ref}`;
      } catch (error) {
        state.textContent = "upload failed";
        showProblem(errorBox, error);
      } finally {
        delete hidden.dataset.pending;
      }
    },
  });
  return { element: h("span", { class: "upload" }, picker, state), hidden };
}

export function templateForm(template, { onChange }) {
  const schema = template.parameters || {};
  const required = new Set(schema.required || []);
  const properties = schema.properties || {};
  const fields = h("div", { class: "fields" });
  const kinds = {};
  // Required first, then in the template's own order.
  const names = Object.keys(properties).sort((a, b) => required.has(b) - required.has(a));
  for (const name of names) {
    const property = properties[name];
    const id = `param-${name}`;
    const errorBox = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
    let input;
    let extra = null;
    if (isUpload(property)) {
      const upload = uploadControl(name, id, required.has(name), errorBox);
      input = upload.element;
      extra = upload.hidden;
      kinds[name] = "upload";
    } else {
      input = control(name, property, required.has(name), id);
      kinds[name] = property.type || "string";
    }
    const range = rangeHint(property);
    const hint = [property.description, range && `(${range})`].filter(Boolean).join(" ");
    fields.append(
      h(
        "div",
        { class: `field field-${kinds[name]}`, "data-param": name },
        h("label", { for: id }, name.replaceAll("_", " "), required.has(name) ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null),
        input,
        extra,
        h("p", { class: "help", id: `${id}-help` }, hint),
        errorBox,
      ),
    );
  }
  fields.addEventListener("input", onChange);
  fields.addEventListener("change", onChange);
  return { element: fields, kinds };
}

// The params as JSON text: integers are copied digit for digit (a seed may exceed 2^53).
export function paramsJson(container, kinds) {
  const parts = [];
  for (const [name, kind] of Object.entries(kinds)) {
    const input = container.querySelector(kind === "upload" ? `input[type=hidden][name="${name}"]` : `[name="${name}"]`);
    if (!input) continue;
    if (kind === "boolean") {
      parts.push(`${JSON.stringify(name)}:${input.checked}`);
      continue;
    }
    const raw = input.value;
    if (raw === "") continue; // left out: the template's default (or a random seed) applies
    let value;
    if (kind === "integer" && /^-?\d+$/.test(raw.trim())) value = raw.trim();
    else if ((kind === "integer" || kind === "number") && raw.trim() !== "" && Number.isFinite(Number(raw))) value = String(Number(raw));
    else value = JSON.stringify(raw); // sent as it is, so the API names what is wrong with it
    parts.push(`${JSON.stringify(name)}:${value}`);
  }
  return `{${parts.join(",")}}`;
}

export function uploadsPending(container) {
  return container.querySelector("input[data-pending]") !== null;
}

// Puts each error of a problem document beside its field; returns the errors no field took.
export function showFieldErrors(container, problem, pointerPrefix) {
  clearFieldErrors(container);
  const unplaced = [];
  for (const error of problem.errors || []) {
    const pointer = error.pointer || "";
    const name = pointer.startsWith(pointerPrefix) ? pointer.slice(pointerPrefix.length).split("/")[0] : null;
    const field = name ? container.querySelector(`[data-param="${CSS.escape(name)}"]`) : null;
    if (!field) {
      unplaced.push(error);
      continue;
    }
    const box = field.querySelector(".field-error");
    box.textContent = error.detail;
    box.hidden = false;
    field.classList.add("invalid");
    const input = field.querySelector("input:not([type=hidden]), select, textarea");
    if (input) input.setAttribute("aria-invalid", "true");
  }
  return unplaced;
}

export function clearFieldErrors(container) {
  for (const field of container.querySelectorAll(".field.invalid")) {
    field.classList.remove("invalid");
    field.querySelector(".field-error").hidden = true;
    for (const input of field.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }
}
