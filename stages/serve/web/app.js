// litcache serve's page: send a photo to POST /v1/predict and show the top
// predictions with score bars and the best match's taxonomy. No framework,
// nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const RANKS = ["kingdom", "phylum", "class", "order", "family", "genus", "species"];
let current = null; // the photo shown, re-sent when the rank changes
let shotURL = null;

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}

function show(file) {
  current = file;
  if (shotURL) URL.revokeObjectURL(shotURL);
  shotURL = URL.createObjectURL(file);
  $("shot").src = shotURL;
  $("result").hidden = false;
  // On a phone the answer is below the picker: bring it into view.
  if (window.matchMedia("(max-width: 720px)").matches) {
    $("result").scrollIntoView({ behavior: "smooth", block: "start" });
  }
  classify();
}

async function classify() {
  if (!current) return;
  const rank = $("rank").value;
  $("predictions").replaceChildren();
  $("taxonomy").hidden = true;
  $("timing").textContent = "";
  setStatus("Classifying…");
  const form = new FormData();
  form.append("image", current);
  const t0 = performance.now();
  let body;
  try {
    const r = await fetch(`/v1/predict?top=5&rank=${encodeURIComponent(rank)}`, { method: "POST", body: form });
    body = await r.json();
    if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  } catch (e) {
    setStatus(`Could not classify: ${e.message}`, true);
    return;
  }
  render(body, rank, performance.now() - t0);
}

function render(answer, rank, roundTrip) {
  const list = $("predictions");
  const preds = answer.predictions || [];
  setStatus(preds.length ? `Top ${preds.length} at rank ${answer.rank}` : "No prediction");
  for (const p of preds) {
    const li = document.createElement("li");
    li.className = "prediction";
    const names = document.createElement("div");
    names.className = "names";
    const label = document.createElement("div");
    label.className = "label";
    if (p.common_name) {
      const c = document.createElement("span");
      c.className = "common";
      c.textContent = p.common_name;
      label.append(c);
    }
    const sci = document.createElement("span");
    sci.className = "sci";
    sci.textContent = p.name;
    label.append(sci);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `${(100 * p.score).toFixed(1)}%`;
    names.append(label, score);
    const track = document.createElement("div");
    track.className = "track";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = `${Math.max(0, Math.min(100, 100 * p.score))}%`;
    track.append(fill);
    li.append(names, track);
    list.append(li);
  }
  const path = $("path");
  path.replaceChildren();
  if (preds.length) {
    const tax = preds[0].taxonomy || {};
    for (const r of RANKS) {
      if (!tax[r]) continue;
      const li = document.createElement("li");
      const k = document.createElement("span");
      k.className = "r";
      k.textContent = r;
      li.append(k, document.createTextNode(tax[r]));
      path.append(li);
    }
    $("taxonomy").hidden = path.children.length === 0;
  }
  $("timing").textContent = `server ${answer.ms.toFixed(0)} ms · round trip ${roundTrip.toFixed(0)} ms`;
}

async function about() {
  try {
    const r = await fetch("/healthz");
    const h = await r.json();
    if (r.ok && h.classes) {
      $("about").textContent = `Species from a photo: ${h.classes.toLocaleString()} classes, offline, on this server.`;
    }
  } catch (e) { /* the page works without it */ }
}

$("photo").addEventListener("change", (e) => {
  const f = e.target.files && e.target.files[0];
  if (f) show(f);
});
$("rank").addEventListener("change", classify);
const drop = $("drop");
for (const ev of ["dragenter", "dragover"]) {
  drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const ev of ["dragleave", "drop"]) {
  drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
}
drop.addEventListener("drop", (e) => {
  const f = e.dataTransfer && e.dataTransfer.files[0];
  if (f) show(f);
});
about();
