// citeqa's chat page. Plain JavaScript, no build step, no library.
// Everything that comes from a document or a user is put in the page with textContent, never as HTML.
"use strict";

const KEY_STORE = "citeqa.api-key";
const MARKER = /\[(\d+)\]/g;

const $ = (id) => document.getElementById(id);
const state = {
  history: [],        // earlier turns, sent with each question so follow-ups are understood
  busy: false,
  info: { auth: { writes: false, reads: false }, limits: { history_turns: 20, body_mb: 10 },
    upload_types: [".txt", ".md", ".html", ".htm", ".pdf", ".docx"] },
  docs: new Map(),    // doc_id -> stored text, fetched when a source is first opened
  opener: null,       // the element that opened the side panel, focused again when it closes
  openings: 0,        // counts source openings, so only the latest fills the panel
  pendingWrite: null, // what to do once the user has given an API key
};

// ---------- talking to the API ----------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra = {}) {
  const key = localStorage.getItem(KEY_STORE);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function failure(response) {
  let code = "http_error";
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

// In plain words: what went wrong, and what to do about it.
function plain(error) {
  if (!(error instanceof ApiError)) return "The server could not be reached. Is citeqa still running?";
  const said = error.message;
  switch (error.status) {
    case 401: return "The server did not accept the API key. Enter the key it was started with.";
    case 404: return `Not found: ${said}`;
    case 413: return `That file is too large: the limit is ${state.info.limits.body_mb} MB.`;
    case 415: return `That file cannot be added: ${said}`;
    case 422: return said.startsWith("file: ")  // the upload's file itself: broken, encrypted, empty
      ? `That file cannot be added: ${said.slice(6)}` : `The request was not accepted: ${said}`;
    case 503: return "The index is still loading. Try again in a few seconds.";
    default: return `Something went wrong on the server (${error.status}): ${said}`;
  }
}

// Server-Sent Events over a POST (EventSource can only GET): yields {event, data} as they arrive.
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

// ---------- small DOM helpers ----------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function oneLine(text) {
  return text.split(/\s+/).filter(Boolean).join(" ");
}

// Offsets count Unicode code points (as Python does); JavaScript strings index UTF-16 units.
function utf16Index(text, codePoints) {
  let i = 0;
  for (let n = 0; n < codePoints && i < text.length; n++) {
    const unit = text.charCodeAt(i);
    i += unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length ? 2 : 1;
  }
  return i;
}

// ---------- the conversation ----------

function renderAnswer(target, text, citations) {
  target.replaceChildren();
  const byId = new Map((citations || []).map((c) => [c.id, c]));
  let last = 0;
  for (const match of text.matchAll(MARKER)) {
    target.append(document.createTextNode(text.slice(last, match.index)));
    target.append(chip(Number(match[1]), byId.get(Number(match[1]))));
    last = match.index + match[0].length;
  }
  target.append(document.createTextNode(text.slice(last)));
}

function chip(n, citation) {
  const button = el("button", "chip", String(n));
  button.type = "button";
  button.dataset.cite = String(n);
  if (!citation) {
    button.disabled = true; // still streaming: the quote arrives with the last event
    button.setAttribute("aria-label", `Citation ${n}`);
    return button;
  }
  button.setAttribute("aria-label", `Citation ${n}: ${citation.title}`);
  button.addEventListener("mouseenter", () => showTip(button, citation));
  button.addEventListener("focus", () => showTip(button, citation));
  button.addEventListener("mouseleave", hideTip);
  button.addEventListener("blur", hideTip);
  button.addEventListener("click", () => openSource(citation, button));
  return button;
}

function showTip(anchor, citation) {
  const tip = $("tip");
  tip.querySelector(".tip-title").textContent = citation.title;
  tip.querySelector(".tip-quote").textContent = `“${oneLine(citation.quote)}”`;
  tip.hidden = false;
  const box = anchor.getBoundingClientRect();
  const width = tip.offsetWidth;
  const left = Math.max(8, Math.min(box.left + window.scrollX, window.scrollX + document.documentElement.clientWidth - width - 8));
  const below = box.bottom + 8 + tip.offsetHeight < window.innerHeight;
  tip.style.left = `${left}px`;
  tip.style.top = `${(below ? box.bottom + 6 : box.top - tip.offsetHeight - 6) + window.scrollY}px`;
  anchor.setAttribute("aria-describedby", "tip");
}

function hideTip() {
  $("tip").hidden = true;
}

function sourceItem(citation) {
  const item = el("li", "source");
  const button = el("button", "source-link");
  button.type = "button";
  button.append(el("span", "source-n", `[${citation.id}]`), el("span", "source-title", citation.title),
    el("span", "source-quote", `“${oneLine(citation.quote)}”`));
  button.addEventListener("click", () => openSource(citation, button));
  item.append(button);
  return item;
}

function passageItem(passage) {
  const item = el("li", "source");
  const button = el("button", "source-link");
  button.type = "button";
  const excerpt = oneLine(passage.text);
  button.append(el("span", "source-title", passage.title),
    el("span", "source-quote", excerpt.length > 220 ? `${excerpt.slice(0, 220)}…` : excerpt));
  button.addEventListener("click", () => openSource(passage, button));
  item.append(button);
  return item;
}

// "1 passage", "3 passages"
function counted(n, word) {
  return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
}

function newTurn(question) {
  $("intro").hidden = true;
  const turn = el("li", "turn");
  const asked = el("p", "question", question);
  const reply = el("article", "reply");
  reply.setAttribute("aria-busy", "true");
  const text = el("p", "answer");
  const status = el("p", "meta", "Searching the documents…");
  reply.append(text, status);
  turn.append(asked, reply);
  $("turns").append(turn);
  turn.scrollIntoView({ block: "end" });
  return { turn, reply, text, status };
}

// `waited`: milliseconds from sending the question to the whole answer, as the user lived them
function finishTurn(view, result, waited) {
  const { turn, reply, text, status } = view;
  reply.setAttribute("aria-busy", "false");
  renderAnswer(text, result.answer, result.citations);
  const seconds = (waited / 1000).toFixed(waited < 10000 ? 1 : 0);
  // Scrolled once the turn holds everything: the answer is read from its beginning, not under the box
  requestAnimationFrame(() => turn.scrollIntoView({ block: "start" }));
  // Screen readers hear that the answer is in (the turn itself is not a live region: it streams)
  $("announce").textContent = result.abstained ? "The documents do not answer this question."
    : `Answer ready, with ${counted(result.citations.length, "source")}: ${oneLine(result.answer).slice(0, 200)}`;
  if (result.query && result.query !== result.question) { // a follow-up, searched as it was rewritten
    reply.insertBefore(el("p", "searched", `Searched for: “${result.query}”`), status);
  }
  if (result.abstained) {
    reply.classList.add("abstained");
    reply.prepend(el("p", "label", "Not in the documents"));
    status.textContent = `Answered in ${seconds} s. These passages came closest:`;
    const list = el("ol", "sources closest");
    list.setAttribute("aria-label", "Closest passages");
    result.passages.slice(0, 3).forEach((p) => list.append(passageItem(p)));
    reply.append(list);
    return;
  }
  status.textContent = `Answered in ${seconds} s from ${counted(result.passages.length, "passage")}.`;
  const heading = el("h3", "sources-head", "Sources");
  const list = el("ol", "sources");
  list.setAttribute("aria-label", "Sources");
  result.citations.forEach((c) => list.append(sourceItem(c)));
  reply.append(heading, list);
}

function failTurn(view, message, question) {
  view.reply.setAttribute("aria-busy", "false");
  view.reply.classList.add("failed");
  view.text.textContent = "";
  view.status.textContent = message;
  view.status.setAttribute("role", "alert");
  const retry = el("button", "retry", "Retry");
  retry.type = "button";
  retry.addEventListener("click", () => {
    if (state.busy) return;
    view.turn.remove(); // the failed turn gives way to the new try
    ask(question);
  });
  view.reply.append(retry);
}

async function ask(question) {
  if (state.busy) return;
  state.busy = true;
  $("send").disabled = true;
  $("ask-error").textContent = "";
  const began = performance.now();
  const view = newTurn(question);
  const history = state.history.slice(-state.info.limits.history_turns);
  try {
    const response = await fetch("/v1/ask/stream", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ question, history }),
    });
    if (!response.ok) throw await failure(response);
    let streamed = "";
    let result = null;
    for await (const { event, data } of events(response)) {
      if (event === "passages") {
        view.status.textContent = `Found ${counted(data.passages.length, "passage")}; choosing what answers…`;
      } else if (event === "delta") {
        streamed += data.text;
        renderAnswer(view.text, streamed, null);
      } else if (event === "done") {
        result = data;
      } else if (event === "error") {
        throw new ApiError(500, data.error.code, data.error.message);
      }
    }
    if (!result) throw new ApiError(502, "incomplete", "the answer stream ended early");
    finishTurn(view, result, performance.now() - began);
    state.history.push({ role: "user", content: question }, { role: "assistant", content: result.answer });
  } catch (error) {
    failTurn(view, plain(error), question);
    if (error.status === 401) {
      openSide("docs", "Documents", $("question"));
      askForKey(null, "This server needs an API key to answer questions. Enter it, then ask again.");
    }
  } finally {
    state.busy = false;
    $("send").disabled = false;
  }
}

function startOver() {
  state.history = [];
  $("turns").replaceChildren();
  $("intro").hidden = false;
  closeSide();
  $("question").value = "";
  $("question").focus();
}

// ---------- the side panel: a source document, or the documents list ----------

function openSide(view, title, opener) {
  hideTip();
  state.opener = opener || document.activeElement;
  $("side").hidden = false;
  document.body.classList.add("side-open");
  $("source-view").hidden = view !== "source";
  $("docs-view").hidden = view !== "docs";
  $("side-title").textContent = title;
  $("open-docs").setAttribute("aria-expanded", String(view === "docs"));
}

function closeSide() {
  if ($("side").hidden) return;
  $("side").hidden = true;
  document.body.classList.remove("side-open");
  $("open-docs").setAttribute("aria-expanded", "false");
  if (state.opener && document.contains(state.opener)) state.opener.focus();
}

async function documentText(docId) {
  if (!state.docs.has(docId)) {
    const doc = await api(`/v1/documents/${encodeURIComponent(docId)}`);
    state.docs.set(docId, doc.text);
  }
  return state.docs.get(docId);
}

// Opens the cited document beside the answer, the quoted span highlighted and scrolled into view.
async function openSource(span, opener) {
  const opening = ++state.openings; // a later click wins over a fetch still under way
  openSide("source", span.title, opener);
  const body = $("source-text");
  const meta = $("source-meta");
  body.replaceChildren();
  meta.textContent = "Loading the document…";
  let text, start, end;
  try {
    for (const fresh of [false, true]) {
      if (fresh) state.docs.delete(span.doc_id); // replaced since it was cached: fetch it again
      text = await documentText(span.doc_id);
      start = utf16Index(text, span.start);
      end = start + utf16Index(text.slice(start), span.end - span.start);
      if (text.slice(start, end) === (span.quote ?? span.text)) break;
    }
  } catch (error) {
    if (opening !== state.openings) return;
    meta.textContent = error.status === 404
      ? "This document has been deleted since the answer was given." : plain(error);
    return;
  }
  if (opening !== state.openings) return;
  const mark = el("mark", "", text.slice(start, end));
  body.append(document.createTextNode(text.slice(0, start)), mark, document.createTextNode(text.slice(end)));
  // Ids and offsets are for programs: a reader is told where the quote sits (the API gives the offsets)
  meta.textContent = `The quoted words are highlighted, about ${Math.round((100 * start) / Math.max(1, text.length))}% of the way into the document.`;
  meta.title = `${span.doc_id}, characters ${span.start}–${span.end}`;
  // Scroll the panel only: scrollIntoView would scroll the conversation away as well.
  const view = $("source-view");
  view.scrollTop += mark.getBoundingClientRect().top - view.getBoundingClientRect().top - view.clientHeight / 3;
  $("side-title").focus({ preventScroll: true });
}

async function showDocuments() {
  openSide("docs", "Documents", $("open-docs"));
  $("side-title").focus({ preventScroll: true });
  await refreshDocuments();
}

async function refreshDocuments() {
  const list = $("doc-list");
  try {
    const { documents } = await api("/v1/documents");
    list.replaceChildren(...documents.map(documentItem));
    if (!documents.length) list.append(el("li", "notice", "No documents yet: add one above."));
    describeCollection(documents);
  } catch (error) {
    if (error.status === 401) askForKey(refreshDocuments, "This server needs an API key to read documents.");
    $("docs-error").textContent = plain(error);
  }
}

function documentItem(doc) {
  const item = el("li", "doc");
  const about = el("div", "doc-about");
  about.append(el("span", "doc-title", doc.title),
    el("span", "doc-meta", `${counted(doc.chars, "character")} · ${counted(doc.chunks, "passage")}`));
  const remove = el("button", "danger", "Delete");
  remove.type = "button";
  remove.setAttribute("aria-label", `Delete ${doc.title}`);
  remove.addEventListener("click", () => confirmDelete(remove, doc));
  item.append(about, remove);
  return item;
}

// A first click arms the button, a second one within five seconds deletes: no modal dialog needed.
function confirmDelete(button, doc) {
  if (button.dataset.armed !== "yes") {
    button.dataset.armed = "yes";
    button.textContent = "Delete for good?";
    setTimeout(() => {
      button.dataset.armed = "";
      button.textContent = "Delete";
    }, 5000);
    return;
  }
  write(async () => {
    await api(`/v1/documents/${encodeURIComponent(doc.doc_id)}`, { method: "DELETE" });
    state.docs.delete(doc.doc_id);
    $("docs-status").textContent = `Deleted “${doc.title}”.`;
  });
}

async function upload(event) {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) {
    $("docs-error").textContent = "Choose a .txt, .md, .html, .pdf or .docx file first.";
    return;
  }
  // The server names a document after its file (less the suffix): the same name replaces a document.
  const docId = file.name.replace(/^.*[\\/]/, "").replace(/\.[^.]*$/, "");
  const button = $("upload-button");
  if (button.dataset.armed !== docId) {
    let existing = null;
    try {
      existing = (await api("/v1/documents")).documents.find((d) => d.doc_id === docId);
    } catch { /* the upload itself will say what is wrong */ }
    if (existing) {
      button.dataset.armed = docId;
      button.textContent = "Replace it";
      $("docs-status").textContent = `“${existing.title}” (${docId}) is already in the collection. Press “Replace it” to put this file in its place, or choose another file.`;
      setTimeout(() => { button.dataset.armed = ""; button.textContent = "Upload"; }, 10000);
      return;
    }
  }
  button.dataset.armed = "";
  button.textContent = "Upload";
  write(async () => {
    const form = new FormData();
    form.append("file", file);
    $("docs-status").textContent = `Adding “${file.name}”…`;
    const added = await api("/v1/documents", { method: "POST", body: form });
    state.docs.delete(added.doc_id);
    $("file").value = "";
    $("docs-status").textContent = `Added “${added.title}” (${counted(added.chunks, "passage")}). You can ask about it now.`;
  });
}

// Runs a change to the documents; asks for the API key first when the server needs one.
async function write(action) {
  $("docs-error").textContent = "";
  if (state.info.auth.writes && !localStorage.getItem(KEY_STORE)) {
    askForKey(() => write(action), "This server needs an API key to change documents.");
    return;
  }
  try {
    await action();
    await refreshDocuments();
  } catch (error) {
    $("docs-status").textContent = "";
    $("docs-error").textContent = plain(error);
    if (error.status === 401) askForKey(() => write(action), "That key was not accepted. Enter the server's API key.");
  }
}

function askForKey(retry, why) {
  state.pendingWrite = retry;
  $("key-label").textContent = why;
  $("key-form").hidden = false;
  $("api-key").value = "";
  $("api-key").focus();
}

function useKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) return;
  localStorage.setItem(KEY_STORE, key);
  $("key-form").hidden = true;
  $("forget-key").hidden = false;
  $("docs-error").textContent = "";
  const retry = state.pendingWrite;
  state.pendingWrite = null;
  if (retry) retry();
}

function forgetKey() {
  localStorage.removeItem(KEY_STORE);
  $("forget-key").hidden = true;
  $("docs-status").textContent = "The API key is forgotten on this device.";
}

function describeCollection(documents) {
  const names = documents.slice(0, 5).map((d) => `“${d.title}”`).join(", ");
  const more = documents.length > 5 ? ` and ${documents.length - 5} more` : "";
  $("collection").textContent = documents.length
    ? `${documents.length} document${documents.length === 1 ? "" : "s"} to ask about: ${names}${more}.`
    : "The collection is empty: open Documents to add one.";
}

// ---------- start ----------

function wire() {
  const question = $("question");
  $("ask").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) {
      $("ask-error").textContent = "Type a question first.";
      return;
    }
    if (state.busy) { // kept in the box, never lost: it can be sent once this answer is in
      $("ask-error").textContent = "An answer is still coming; send this question when it is done.";
      return;
    }
    question.value = "";
    ask(text);
  });
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("ask").requestSubmit();
    }
  });
  $("new-chat").addEventListener("click", startOver);
  $("open-docs").addEventListener("click", () => ($("side").hidden || $("docs-view").hidden ? showDocuments() : closeSide()));
  $("close-side").addEventListener("click", closeSide);
  $("upload").addEventListener("submit", upload);
  $("key-form").addEventListener("submit", useKey);
  $("forget-key").addEventListener("click", forgetKey);
  $("forget-key").hidden = !localStorage.getItem(KEY_STORE);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      hideTip();
      closeSide();
    }
  });
  window.addEventListener("scroll", hideTip, { passive: true });
}

async function start() {
  wire();
  try {
    state.info = await api("/v1/info");
    $("file").accept = state.info.upload_types.join(",");
    $("file-label").textContent = `Add a document (${state.info.upload_types.join(", ")}, up to ` +
      `${state.info.limits.body_mb} MB)`;
    const { documents } = await api("/v1/documents");
    describeCollection(documents);
  } catch (error) {
    $("collection").textContent = error.status === 401
      ? "This server needs an API key to read: open Documents to enter it." : plain(error);
  }
  $("question").focus();
}

start();
