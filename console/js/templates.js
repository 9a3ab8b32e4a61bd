// The shipped templates and their parameters, each a link into Run.

import { api } from "./api.js";
import { h, problemView, replace } from "./dom.js";
import { isUpload } from "./form.js";

function describe(schema) {
  if (isUpload(schema)) return "an uploaded file";
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.join(", ")}`;
  const parts = [schema.type || "any"];
  if (schema.minimum !== undefined && schema.maximum !== undefined && schema.maximum < 1e15) parts.push(`${schema.minimum}–${schema.maximum}`);
  if (schema.multipleOf !== undefined) parts.push(`× ${schema.multipleOf}`);
  if (schema.default !== undefined && schema.default !== "") parts.push(`default ${schema.default}`);
  return parts.join(", ");
}

export async function templatesView(view) {
  const list = h("div", { class: "cards" }, h("p", { class: "note" }, "Loading…"));
  replace(
    view,
    h("section", { class: "panel" }, h("h1", {}, "Templates"),
      h("p", { class: "note" }, "Named workflows with typed parameters. Models are not listed by the API yet."), list),
  );
  try {
    const { data } = await api.templates();
    replace(
      list,
      data.items.map((template) => {
        const schema = template.parameters || {};
        const required = new Set(schema.required || []);
        return h(
          "article",
          { class: "card", "aria-labelledby": `tpl-${template.name}` },
          h("h2", { id: `tpl-${template.name}` }, template.name),
          h("p", {}, template.description),
          h("table", { class: "params" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Parameter"), h("th", { scope: "col" }, "Accepts"))),
            h("tbody", {}, Object.entries(schema.properties || {}).map(([name, property]) =>
              h("tr", {}, h("td", {}, h("code", {}, name), required.has(name) ? " (required)" : ""), h("td", {}, describe(property)))))),
          h("p", {}, h("a", { class: "button", href: `#/run?template=${encodeURIComponent(template.name)}` }, `Run ${template.name}`)),
        );
      }),
    );
  } catch (error) {
    replace(list, h("div", { class: "problem", role: "alert" }, problemView(error.problem || { title: String(error) })));
  }
}
