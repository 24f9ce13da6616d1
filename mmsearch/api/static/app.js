// The mmsearch page: sign in with a token, search, show cards, play hits at their moment.
// Plain DOM code, no build step; every text from the server goes in as text, never HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const WAVEFORM = '<svg viewBox="0 0 64 64" aria-hidden="true"><path fill="none" ' +
  'stroke="currentColor" stroke-width="4" stroke-linecap="round" d="M6 32h4M16 22v20M24 ' +
  '12v40M32 20v24M40 8v48M48 18v28M56 28v8"/></svg>';

async function api(path, options = {}) {
  const headers = { "X-Requested-With": "mmsearch", ...(options.headers || {}) };
  const response = await fetch(path, { credentials: "same-origin", ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    const error = new Error(detail || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", isError);
}

async function start() {
  try {
    showSignedIn(await api("api/status"));
  } catch (error) {
    if (error.status !== 401) say(error.message, true);
    $("signin").hidden = false;
    $("token").focus();
  }
}

function showSignedIn(status) {
  $("signin").hidden = true;
  $("who").hidden = false;
  $("search").hidden = false;
  $("principals").textContent = status.may_choose_principals
    ? "local owner key"
    : "as " + status.principals.join(", ");
  const select = $("collection");
  select.replaceChildren(new Option("all", ""));
  for (const c of status.collections) {
    select.append(new Option(`${c.collection} (${c.records})`, c.collection));
  }
  $("q").focus();
}

async function signIn(event) {
  event.preventDefault();
  try {
    await api("api/session", {
      method: "POST",
      headers: { Authorization: "Bearer " + $("token").value.trim() },
    });
    $("token").value = "";
    say("");
    showSignedIn(await api("api/status"));
  } catch (error) {
    say(error.status === 401 ? "That token was not accepted." : error.message, true);
  }
}

async function signOut() {
  await api("api/session", { method: "DELETE" }).catch(() => {});
  location.reload();
}

function searchParams() {
  const form = $("search");
  const params = new URLSearchParams();
  params.set("mode", form.mode.value);
  params.set("k", form.k.value);
  if (form.collection.value) params.append("collection", form.collection.value);
  for (const box of form.querySelectorAll('input[name="media_type"]:checked')) {
    params.append("media_type", box.value);
  }
  for (const tag of form.tags.value.split(",").map((t) => t.trim()).filter(Boolean)) {
    params.append("tag", tag);
  }
  if (form.filter.value.trim()) params.set("filter", form.filter.value.trim());
  return params;
}

async function run(label, request) {
  say("Searching…");
  $("results").replaceChildren();
  try {
    const { hits } = await request();
    say(`${hits.length} result${hits.length === 1 ? "" : "s"} for ${label}`);
    $("results").replaceChildren(...hits.map(card));
  } catch (error) {
    say(error.message, true);
  }
}

function searchText(event) {
  event.preventDefault();
  const q = $("q").value.trim();
  if (!q) return say("Type something to search for.", true);
  const params = searchParams();
  params.set("q", q);
  run(`“${q}”`, () => api("api/search?" + params));
}

function searchExample(file) {
  run(`the example ${file.name}`, () =>
    api("api/search?" + searchParams(), {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    }));
}

function moreLike(hit) {
  const params = Object.fromEntries(["mode", "k"].map((n) => [n, searchParams().get(n)]));
  run(`more like “${hit.title}”`, () =>
    api("api/search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ like: hit.segment_id, k: Number(params.k) }),
    }));
}

function seconds(value) {
  return value == null ? "" : `${value.toFixed(1)}`;
}

// «matched» words become <mark> elements; everything else stays plain text.
function highlighted(snippet) {
  const nodes = [];
  for (const [i, part] of snippet.split(/[«»]/).entries()) {
    if (!part) continue;
    if (i % 2) {
      const mark = document.createElement("mark");
      mark.textContent = part;
      nodes.push(mark);
    } else {
      nodes.push(document.createTextNode(part));
    }
  }
  return nodes;
}

function card(hit) {
  const node = $("card").content.firstElementChild.cloneNode(true);
  node.dataset.segmentId = hit.segment_id;
  const picture = node.querySelector(".picture");
  if (hit.thumbnail_url) {
    const img = document.createElement("img");
    img.src = hit.thumbnail_url;
    img.alt = `${hit.media_type}: ${hit.title}`;
    img.loading = "lazy";
    picture.append(img);
  } else if (hit.media_type === "audio") {
    picture.innerHTML = WAVEFORM;  // a constant icon, no server text
  } else {
    picture.textContent = hit.media_type;
  }
  node.querySelector(".title").textContent = hit.title || hit.uri;
  const when = hit.start_s != null ? ` · ${seconds(hit.start_s)}–${seconds(hit.end_s)} s` : "";
  const wider = hit.moment_start_s != null &&
    (hit.moment_start_s < hit.start_s || hit.moment_end_s > hit.end_s);
  const moment = wider
    ? ` (moment ${seconds(hit.moment_start_s)}–${seconds(hit.moment_end_s)} s)` : "";
  node.querySelector(".meta").textContent =
    `${hit.media_type} · ${hit.collection} · ${hit.kind}${when}${moment} · score ${hit.score.toFixed(4)}`;
  node.querySelector(".snippet").append(...highlighted(hit.snippet || ""));
  const open = node.querySelector(".open");
  open.href = hit.media_url;
  const play = node.querySelector(".play");
  if (hit.media_type === "audio" || hit.media_type === "video") {
    play.hidden = false;
    play.textContent = `Play from ${seconds(hit.start_s || 0)} s`;
    play.addEventListener("click", () => playAt(node, hit));
  }
  node.querySelector(".why").addEventListener("click", (e) => toggleRanks(node, hit, e.target));
  node.querySelector(".like").addEventListener("click", () => moreLike(hit));
  return node;
}

function playAt(node, hit) {
  const holder = node.querySelector(".player");
  let player = holder.querySelector("video, audio");
  const start = hit.start_s || 0;
  if (!player) {
    player = document.createElement(hit.media_type === "video" ? "video" : "audio");
    player.controls = true;
    player.preload = "metadata";
    player.src = `${hit.media_url}#t=${start}`;
    player.setAttribute("aria-label", `${hit.title} from ${seconds(start)} s`);
    holder.append(player);
  }
  const seekAndPlay = () => {
    player.currentTime = start;
    player.play().catch(() => {});
  };
  if (player.readyState >= 1) seekAndPlay();
  else player.addEventListener("loadedmetadata", seekAndPlay, { once: true });
}

function toggleRanks(node, hit, button) {
  const table = node.querySelector(".ranks");
  const open = table.hidden;
  if (open && !table.tBodies[0].rows.length) {
    for (const [leg, rank] of Object.entries(hit.ranks)) {
      const row = table.tBodies[0].insertRow();
      const score = hit.leg_scores[leg];
      for (const text of [leg, String(rank), score == null ? "" : score.toFixed(4)]) {
        row.insertCell().textContent = text;
      }
    }
  }
  table.hidden = !open;
  button.setAttribute("aria-expanded", String(open));
}

function setUpDrop() {
  const zone = $("drop");
  const input = $("example");
  input.addEventListener("change", () => input.files[0] && searchExample(input.files[0]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files[0]) searchExample(e.dataTransfer.files[0]);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("search").addEventListener("submit", searchText);
  setUpDrop();
  start();
});
