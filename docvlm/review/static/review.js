/* docvlm review page: plain JavaScript, no dependencies. The data is inline (#review-data);
   in --serve mode the same page also edits: POST /api/corrections. */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("review-data").textContent);
  var LIVE = DATA.mode === "serve";
  var docs = DATA.documents;
  var byId = {};
  docs.forEach(function (d, i) { d.rank = i; byId[d.doc_id] = d; });
  var state = { doc: null, field: null, view: "documents" };
  var fieldKinds = {};
  DATA.fields.forEach(function (f) { fieldKinds[f.group] = f; });

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] === null || attrs[k] === undefined || attrs[k] === false) return;
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  function confClass(c) { return c === null || c === undefined ? "" : c < 0.5 ? "conf-low" : c < 0.8 ? "conf-mid" : "conf-high"; }
  function fmtConf(c) { return c === null || c === undefined ? "—" : c.toFixed(2); }

  /* the value a row shows: the latest correction, else what was read */
  function current(row) {
    var c = row.correction;
    if (!c) return row.value;
    if (c.action === "absent") return null;
    if (c.new_value === null || c.new_value === undefined) return row.value;
    var v = JSON.parse(c.new_value);
    return typeof v === "string" ? v : JSON.stringify(v);
  }

  /* -- filters --------------------------------------------------------------------------- */
  function filters() {
    var below = parseFloat($("#f-below").value);
    return {
      status: $("#f-status").value,
      field: $("#f-field").value,
      reader: $("#f-reader").value,
      below: isNaN(below) ? null : below,
      errors: $("#f-errors").checked
    };
  }
  function rowFilterActive(f) { return !!(f.field || f.reader || f.below !== null); }
  function rowMatches(row, f) {
    if (f.field && row.group !== f.field) return false;
    if (f.reader && !row.boxes.some(function (b) { return b.reader === f.reader; })) return false;
    if (f.below !== null && !(row.confidence !== null && row.confidence < f.below)) return false;
    return true;
  }
  function docMatches(d, f) {
    if (f.status && d.status !== f.status) return false;
    if (f.errors && !d.errors.length) return false;
    if (rowFilterActive(f) && !d.rows.some(function (r) { return rowMatches(r, f); })) return false;
    return true;
  }
  function fillSelect(sel, values) {
    values.forEach(function (v) { sel.appendChild(el("option", { value: v, text: v })); });
  }
  function setupFilters() {
    var statuses = [], readers = [], groups = [];
    docs.forEach(function (d) {
      if (statuses.indexOf(d.status) < 0) statuses.push(d.status);
      d.rows.forEach(function (r) {
        if (groups.indexOf(r.group) < 0 && (r.boxes.length || r.value !== null)) groups.push(r.group);
        r.boxes.forEach(function (b) { if (b.reader && readers.indexOf(b.reader) < 0) readers.push(b.reader); });
      });
    });
    var ordered = DATA.fields.map(function (f) { return f.group; }).filter(function (g) { return groups.indexOf(g) >= 0; });
    fillSelect($("#f-status"), statuses.sort());
    fillSelect($("#f-field"), ordered);
    fillSelect($("#f-reader"), readers.sort());
    ["#f-status", "#f-field", "#f-reader", "#f-errors"].forEach(function (s) { $(s).addEventListener("change", refresh); });
    $("#f-below").addEventListener("input", refresh);
  }

  /* -- the queue ------------------------------------------------------------------------- */
  function docEntry(d) {
    var corrected = d.rows.filter(function (r) { return r.correction; }).length;
    var meta = [
      d.rows.filter(function (r) { return r.boxes.length; }).length + " values",
      "lowest confidence " + fmtConf(d.min_confidence)
    ];
    if (d.errors.length) meta.push(d.errors.length + (d.errors.length === 1 ? " error" : " errors"));
    if (corrected) meta.push(corrected + " reviewed");
    return el("li", { class: "doc-entry" + (state.doc === d.doc_id ? " current" : ""), "data-doc-id": d.doc_id, title: d.source }, [
      el("div", {}, [el("span", { class: "status status-" + d.status, text: d.status }), " ", el("span", { class: "name", text: d.name })]),
      el("div", { class: "meta", text: meta.join(" · ") })
    ]);
  }
  function fieldQueue(f) {
    var items = [];
    docs.forEach(function (d) {
      if (!docMatches(d, f)) return;
      d.rows.forEach(function (r) {
        if (!r.boxes.length && !r.errors.length) return;
        if (rowFilterActive(f) && !rowMatches(r, f)) return;
        items.push({ d: d, r: r });
      });
    });
    items.sort(function (a, b) {
      var ea = a.r.errors.length ? 0 : 1, eb = b.r.errors.length ? 0 : 1;
      if (ea !== eb) return ea - eb;
      var ca = a.r.confidence === null ? 2 : a.r.confidence, cb = b.r.confidence === null ? 2 : b.r.confidence;
      if (ca !== cb) return ca - cb;
      return a.d.rank - b.d.rank;
    });
    return items.slice(0, 1000);
  }
  function renderQueue() {
    var f = filters(), list = $("#queue");
    list.textContent = "";
    if (state.view === "documents") {
      docs.forEach(function (d) { if (docMatches(d, f)) list.appendChild(docEntry(d)); });
    } else {
      fieldQueue(f).forEach(function (it) {
        list.appendChild(el("li", { class: "field-entry" + (state.doc === it.d.doc_id && state.field === it.r.field ? " current" : ""), "data-doc-id": it.d.doc_id, "data-field": it.r.field }, [
          el("div", {}, [el("span", { class: "conf " + confClass(it.r.confidence), text: fmtConf(it.r.confidence) }), " ", el("strong", { text: it.r.field })]),
          el("div", { class: "meta", text: it.d.name + " · " + (current(it.r) === null ? "(no value)" : current(it.r)) + (it.r.errors.length ? " · " + it.r.errors[0] : "") })
        ]));
      });
    }
    if (!list.children.length) list.appendChild(el("li", { class: "meta", text: "nothing matches the filters" }));
  }

  /* -- one document ---------------------------------------------------------------------- */
  function renderDoc() {
    var d = byId[state.doc], head = $("#doc-head"), errs = $("#doc-errors"), pages = $("#pages"), body = $("#fields tbody");
    head.textContent = ""; errs.textContent = ""; pages.textContent = ""; body.textContent = "";
    if (!d) { head.appendChild(el("div", { text: "No documents in this output folder." })); return; }
    head.setAttribute("data-doc-id", d.doc_id);
    head.appendChild(el("div", {}, [el("span", { class: "status status-" + d.status, text: d.status }), " ", el("strong", { text: d.name }),
      d.run_date ? el("span", { class: "src", text: "  · run " + d.run_date }) : null]));
    head.appendChild(el("div", { class: "src", text: d.source + "  · " + d.doc_id.slice(0, 12) }));
    if (d.note) head.appendChild(el("div", { class: "note", text: d.note }));
    d.errors.forEach(function (e) {
      errs.appendChild(el("li", { class: "doc-error", "data-field": e.field || "" }, [el("strong", { text: e.stage + " · " + e.error_type + ": " }), e.message + (e.path && e.path !== "/" ? " (" + e.path + ")" : "")]));
    });
    d.pages.forEach(function (p) {
      var wrap = el("div", { class: "page", "data-page": p.number, "data-width": p.width, "data-height": p.height }, [
        el("img", { src: p.image, alt: d.name + " page " + p.number, width: p.width, height: p.height })
      ]);
      wrap.appendChild(el("span", { class: "page-no", text: "page " + p.number }));
      d.rows.forEach(function (r) {
        r.boxes.forEach(function (b, i) {
          if (b.page !== p.number || !b.bbox) return;
          var x0 = b.bbox[0], y0 = b.bbox[1], x1 = b.bbox[2], y1 = b.bbox[3];
          var box = el("div", {
            class: "box " + confClass(b.confidence) + (r.errors.length ? " has-error" : ""),
            "data-field": r.field, "data-box": i, "data-bbox": b.bbox.join(","),
            title: r.field + " = " + (b.value === null ? "" : b.value) + "  (" + fmtConf(b.confidence) + ", " + (b.reader || "?") + ")"
          });
          box.style.left = (100 * x0 / p.width) + "%";
          box.style.top = (100 * y0 / p.height) + "%";
          box.style.width = (100 * (x1 - x0) / p.width) + "%";
          box.style.height = (100 * (y1 - y0) / p.height) + "%";
          wrap.appendChild(box);
        });
      });
      pages.appendChild(wrap);
    });
    d.rows.forEach(function (r) { body.appendChild(fieldRow(d, r)); });
    applyRowFilters();
  }
  function fieldRow(d, r) {
    var value = current(r);
    var valueCell = el("td", { class: "f-value" }, [
      value === null ? el("span", { class: "missing", text: r.correction && r.correction.action === "absent" ? "absent" : "no value" }) : el("span", { class: "v", text: value }),
      r.correction && r.correction.action === "correct" && r.value !== null ? el("span", { class: "was", text: r.value }) : null,
      r.correction ? el("span", { class: "state state-" + r.correction.action, title: (r.correction.reviewer || "") + " " + (r.correction.corrected_at || ""), text: { correct: "corrected", confirm: "confirmed", absent: "absent" }[r.correction.action] }) : null
    ]);
    r.errors.forEach(function (m) { valueCell.appendChild(el("div", { class: "err", text: m })); });
    if (LIVE) valueCell.appendChild(editor(d, r, value));
    var tr = el("tr", {
      class: "field-row" + (r.errors.length ? " has-error" : "") + (state.field === r.field ? " selected" : ""),
      "data-field": r.field, "data-group": r.group, "data-state": r.correction ? r.correction.action : ""
    }, [
      el("td", { class: "f-name", text: r.field }),
      valueCell,
      el("td", { class: "f-conf" }, [el("span", { class: "conf " + confClass(r.confidence), text: fmtConf(r.confidence) })]),
      el("td", { class: "f-reader", text: r.reader || "—" }),
      el("td", { class: "f-src src-text", text: r.source_text || "" })
    ]);
    return tr;
  }
  function applyRowFilters() {
    var f = filters(), d = byId[state.doc];
    if (!d) return;
    var shown = {};
    d.rows.forEach(function (r) { shown[r.field] = !rowFilterActive(f) || rowMatches(r, f); });
    $all("#fields tr.field-row").forEach(function (tr) { tr.classList.toggle("hidden", !shown[tr.getAttribute("data-field")]); });
    $all("#pages .box").forEach(function (b) { b.classList.toggle("hidden", !shown[b.getAttribute("data-field")]); });
  }

  /* -- selection --------------------------------------------------------------------------- */
  function selectField(field, scrollTo) {
    state.field = field;
    $all("#fields tr.field-row").forEach(function (tr) { tr.classList.toggle("selected", tr.getAttribute("data-field") === field); });
    var boxes = $all("#pages .box").filter(function (b) { return b.getAttribute("data-field") === field; });
    $all("#pages .box.selected").forEach(function (b) { b.classList.remove("selected"); });
    boxes.forEach(function (b) { b.classList.add("selected"); });
    if (scrollTo === "box" && boxes.length) boxes[0].scrollIntoView({ block: "center", inline: "nearest" });
    var row = $all("#fields tr.field-row").filter(function (tr) { return tr.getAttribute("data-field") === field; })[0];
    if (scrollTo === "row" && row) row.scrollIntoView({ block: "center" });
    writeHash();
  }
  function selectDoc(docId, field) {
    if (!byId[docId]) return;
    state.doc = docId; state.field = field || null;
    renderDoc();
    renderQueue();
    if (field) selectField(field, "box");
    else { $("#pages").scrollTop = 0; writeHash(); }
  }
  function writeHash() {
    var h = "#doc=" + encodeURIComponent(state.doc || "") + (state.field ? "&field=" + encodeURIComponent(state.field) : "");
    if (location.hash !== h) history.replaceState(null, "", h);
  }
  function readHash() {
    var out = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) out[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
    });
    return out;
  }
  function refresh() {
    var f = filters();
    renderQueue();
    if (!state.doc || !docMatches(byId[state.doc], f)) {
      var first = docs.filter(function (d) { return docMatches(d, f); })[0];
      if (first && first.doc_id !== state.doc) { selectDoc(first.doc_id); return; }
    }
    applyRowFilters();
  }

  /* -- editing (serve mode) -------------------------------------------------------------- */
  function editor(d, r, value) {
    var kind = fieldKinds[r.group] || {};
    var hint = kind.format === "date" ? "YYYY-MM-DD" : kind.type === "number" ? "number, e.g. 1234.56" : kind.type === "integer" ? "whole number" : kind.type || "";
    var input = el("input", { type: "text", class: "edit-value", value: value === null ? "" : value, placeholder: hint, "aria-label": "new value of " + r.field });
    var msg = el("div", { class: "msg" });
    function send(action) {
      msg.className = "msg"; msg.textContent = "saving…";
      fetch("api/corrections", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ doc_id: d.doc_id, field: r.field, action: action, value: action === "correct" ? input.value : null })
      }).then(function (resp) {
        return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
      }).then(function (res) {
        if (!res.ok) { msg.className = "msg error"; msg.textContent = res.body.error || "refused"; return; }
        r.correction = res.body.correction;
        var tr = fieldRow(d, r);
        var row = $all("#fields tr.field-row").filter(function (x) { return x.getAttribute("data-field") === r.field; })[0];
        row.parentNode.replaceChild(tr, row);
        var m = $(".msg", tr); m.className = "msg ok"; m.textContent = "saved";
        renderQueue();
        applyRowFilters();
      }).catch(function (err) { msg.className = "msg error"; msg.textContent = "not saved: " + err; });
    }
    var wrap = el("div", { class: "edit" }, [
      input,
      el("button", { type: "button", class: "do-correct", title: "save the typed value", text: "save" }),
      el("button", { type: "button", class: "do-confirm", title: "confirm: the value read is right", text: "ok" }),
      el("button", { type: "button", class: "do-absent", title: "mark absent: the document has no such value", text: "absent" })
    ]);
    input.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); send("correct"); } });
    $(".do-correct", wrap).addEventListener("click", function () { send("correct"); });
    $(".do-confirm", wrap).addEventListener("click", function () { send("confirm"); });
    $(".do-absent", wrap).addEventListener("click", function () { send("absent"); });
    var cell = el("div", {}, [wrap, msg]);
    return cell;
  }

  /* -- wiring ------------------------------------------------------------------------------ */
  $("#queue").addEventListener("click", function (e) {
    var li = e.target.closest("li[data-doc-id]");
    if (li) selectDoc(li.getAttribute("data-doc-id"), li.getAttribute("data-field"));
  });
  $("#queue-tabs").addEventListener("click", function (e) {
    var b = e.target.closest("button[data-view]");
    if (!b) return;
    state.view = b.getAttribute("data-view");
    $all("#queue-tabs button").forEach(function (x) { x.classList.toggle("active", x === b); });
    renderQueue();
  });
  $("#fields tbody").addEventListener("click", function (e) {
    if (e.target.closest(".edit")) return;
    var tr = e.target.closest("tr.field-row");
    if (tr) selectField(tr.getAttribute("data-field"), "box");
  });
  $("#pages").addEventListener("click", function (e) {
    var box = e.target.closest(".box");
    if (box) selectField(box.getAttribute("data-field"), "row");
  });
  document.addEventListener("keydown", function (e) {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    if (e.key !== "j" && e.key !== "k") return;
    var shown = docs.filter(function (d) { return docMatches(d, filters()); });
    var i = shown.indexOf(byId[state.doc]) + (e.key === "j" ? 1 : -1);
    if (shown[i]) selectDoc(shown[i].doc_id);
  });

  var counts = {};
  docs.forEach(function (d) { counts[d.status] = (counts[d.status] || 0) + 1; });
  $("#summary").textContent = DATA.out_dir + " · " + DATA.table + " · " + docs.length + " documents (" +
    Object.keys(counts).sort().map(function (k) { return counts[k] + " " + k; }).join(", ") + ") · pages at " + DATA.dpi + " dpi" +
    (LIVE ? " · editing: corrections saved to corrections.parquet" : " · read-only (docvlm review --serve to edit)");
  DATA.warnings.forEach(function (w) { $("#warnings").appendChild(el("div", { text: w })); });
  setupFilters();
  var h = readHash();
  if (h.doc && byId[h.doc]) selectDoc(h.doc, h.field);
  else if (docs.length) selectDoc(docs[0].doc_id);
  else { renderQueue(); renderDoc(); }
  document.body.setAttribute("data-ready", "1");
})();
