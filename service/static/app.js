// citeqa's chat page. Plain JavaScript, no build step, no library.
// Everything that comes from a document or a user is put in the page with textContent, never as HTML.
"use strict";

const KEY_STORE = "citeqa.api-key";
const CONV_STORE = "citeqa.conversations"; // every conversation, newest first
const CURRENT_STORE = "citeqa.current";    // the one on screen, shown again after a reload
const MAX_CONVERSATIONS = 50;
const CONTEXT = 90; // code points of the document shown on each side of a quote under the answer
const MARKER = /\[(\d+)\]/g;
const BLOCK_KINDS = new Set(["code"]); // quotes drawn as blocks in an answer, with their own line breaks

const $ = (id) => document.getElementById(id);
const state = {
  conversations: [],  // [{id, turns: [{question, result, waited, scope}], updated}], newest first
  conversation: null, // the one on screen; its turns are the history sent with each question
  documents: [],      // the collection's listing, for the scope choice and the example questions
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

// ---------- the conversation ----------

// The answer with a chip for each marker. Once the citations are in, a quote of code is shown as the code
// block it is in the document (its own line breaks and indentation), not run into the sentence.
function renderAnswer(target, text, citations) {
  target.replaceChildren();
  const byId = new Map((citations || []).map((c) => [c.id, c]));
  let last = 0;
  let line = el("p", "answer-line");
  for (const match of text.matchAll(MARKER)) {
    const citation = byId.get(Number(match[1]));
    const said = text.slice(last, match.index);
    if (citation && BLOCK_KINDS.has(citation.kind) && said.trim()) {
      if (line.childNodes.length) target.append(line);
      const block = el("pre", `answer-${citation.kind}`);
      block.append(el("code", "", citation.quote), chip(Number(match[1]), citation));
      target.append(block);
      line = el("p", "answer-line");
    } else {
      line.append(document.createTextNode(said), chip(Number(match[1]), citation));
    }
    last = match.index + match[0].length;
  }
  line.append(document.createTextNode(text.slice(last)));
  if (line.childNodes.length) target.append(line);
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

// The words of the passage around a quote, so a source reads in its context. Offsets count code points.
function around(citation, passages) {
  const p = (passages || []).find((x) => x.doc_id === citation.doc_id && x.start <= citation.start
    && citation.end <= x.end);
  if (!p) return { before: "", after: "" };
  const points = Array.from(p.text);
  const from = citation.start - p.start;
  const to = citation.end - p.start;
  let before = points.slice(Math.max(0, from - CONTEXT), from).join("");
  let after = points.slice(to, to + CONTEXT).join("");
  if (from > CONTEXT) before = `…${before.replace(/^\S*\s/, "")}`; // cut at a word, not inside one
  if (to + CONTEXT < points.length) after = `${after.replace(/\s\S*$/, "")}…`;
  return { before: oneLine(before), after: oneLine(after) };
}

function sourceItem(citation, passages) {
  const item = el("li", "source");
  const button = el("button", "source-link");
  button.type = "button";
  const { before, after } = around(citation, passages);
  const words = el("span", "source-quote");
  words.append(el("span", "context", before ? `${before} ` : ""), el("q", "quoted", oneLine(citation.quote)),
    el("span", "context", after ? ` ${after}` : ""));
  button.append(el("span", "source-n", `[${citation.id}]`), words);
  if (citation.page) button.append(el("span", "source-page", `page ${citation.page}`));
  button.setAttribute("aria-label", `Source ${citation.id}, ${citation.title}${citation.page ? `, page ${citation.page}` : ""}`);
  button.addEventListener("click", () => openSource(citation, button));
  item.append(button);
  return item;
}

// Sources grouped by document: each document named once, its quotes under it in the answer's order.
function sourceList(result) {
  const groups = new Map();
  for (const c of result.citations) {
    if (!groups.has(c.doc_id)) groups.set(c.doc_id, []);
    groups.get(c.doc_id).push(c);
  }
  const list = el("ul", "sources");
  list.setAttribute("aria-label", "Sources");
  for (const cites of groups.values()) {
    const item = el("li", "source-doc");
    const quotes = el("ol", "source-quotes");
    cites.forEach((c) => quotes.append(sourceItem(c, result.passages)));
    item.append(el("h4", "source-title", cites[0].title), quotes);
    list.append(item);
  }
  return list;
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

function newTurn(question, scope) {
  $("intro").hidden = true;
  const turn = el("li", "turn");
  const asked = el("p", "question", question);
  const reply = el("article", "reply");
  reply.setAttribute("aria-busy", "true");
  const text = el("div", "answer");
  const status = el("p", "meta", "Searching the documents…");
  reply.append(text, status);
  turn.append(asked);
  if (scope?.doc_ids) turn.append(el("p", "scoped", `In ${scopeWords(scope.doc_ids)}`));
  turn.append(reply);
  $("turns").append(turn);
  return { turn, reply, text, status };
}

// "from 5 passages", the passages a click away: what the answer was chosen from
function passagesToggle(result) {
  const button = el("button", "link passages-toggle", counted(result.passages.length, "passage"));
  button.type = "button";
  button.setAttribute("aria-expanded", "false");
  const list = el("ol", "sources passages");
  list.setAttribute("aria-label", "Passages read for this answer");
  list.hidden = true;
  button.addEventListener("click", () => {
    if (!list.childElementCount) result.passages.forEach((p) => list.append(passageItem(p)));
    list.hidden = !list.hidden;
    button.setAttribute("aria-expanded", String(!list.hidden));
  });
  return { button, list };
}

// The answer and its sources as plain text, for pasting elsewhere
function copyText(result) {
  if (result.abstained) return result.answer;
  const lines = result.citations.map((c) => `[${c.id}] ${c.title}${c.page ? `, page ${c.page}` : ""}: “${oneLine(c.quote)}”`);
  return `${result.answer}\n\nSources:\n${lines.join("\n")}\n`;
}

async function copy(button, result) {
  const text = copyText(result);
  try {
    await navigator.clipboard.writeText(text);
  } catch { // no clipboard API (a page served over plain http from another host): the old way
    const area = el("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = "Copied";
  $("announce").textContent = "The answer and its sources are copied.";
  setTimeout(() => { button.textContent = "Copy"; }, 2000);
}

// `waited`: milliseconds from sending the question to the whole answer, as the user lived them.
// `restored`: drawn again from the browser's storage, so nothing is announced or scrolled.
function finishTurn(view, result, waited, restored = false) {
  const { turn, reply, text, status } = view;
  reply.setAttribute("aria-busy", "false");
  renderAnswer(text, result.answer, result.citations);
  const seconds = (waited / 1000).toFixed(waited < 10000 ? 1 : 0);
  if (!restored) {
    // Scrolled once the turn holds everything: the answer is read from its beginning, not under the box
    requestAnimationFrame(() => turn.scrollIntoView({ block: "start" }));
    // Screen readers hear that the answer is in (the turn itself is not a live region: it streams)
    $("announce").textContent = result.abstained ? "The documents do not answer this question."
      : `Answer ready, with ${counted(result.citations.length, "source")}: ${oneLine(result.answer).slice(0, 200)}`;
  }
  if (result.query && result.query !== result.question) { // a follow-up, searched as it was rewritten
    reply.insertBefore(el("p", "searched", `Searched for: “${result.query}”`), status);
  }
  const passages = passagesToggle(result);
  const tools = el("div", "reply-tools");
  const copyButton = el("button", "copy", "Copy");
  copyButton.type = "button";
  copyButton.setAttribute("aria-label", "Copy the answer and its sources");
  copyButton.addEventListener("click", () => copy(copyButton, result));
  tools.append(copyButton);
  status.replaceChildren(`Answered in ${seconds} s from `, passages.button, ".");
  if (result.abstained) {
    reply.classList.add("abstained");
    reply.prepend(el("p", "label", "Not in the documents"));
    status.append(" These came closest:");
    const list = el("ol", "sources closest");
    list.setAttribute("aria-label", "Closest passages");
    result.passages.slice(0, 3).forEach((p) => list.append(passageItem(p)));
    reply.append(passages.list, list, tools);
    return;
  }
  reply.append(passages.list, el("h3", "sources-head", "Sources"), sourceList(result), tools);
}

function failTurn(view, message, question, scope) {
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
    ask(question, scope);
  });
  view.reply.append(retry);
}

// Earlier turns of the conversation on screen, as the API takes them
function earlierTurns() {
  const turns = state.conversation.turns.flatMap((t) => [
    { role: "user", content: t.question }, { role: "assistant", content: t.result.answer }]);
  return turns.slice(-state.info.limits.history_turns);
}

async function ask(question, scope = currentScope()) {
  if (state.busy) return;
  state.busy = true;
  $("send").disabled = true;
  $("ask-error").textContent = "";
  const began = performance.now();
  const view = newTurn(question, scope);
  view.turn.scrollIntoView({ block: "end" });
  const conversation = state.conversation; // the answer joins the conversation it was asked in
  try {
    const response = await fetch("/v1/ask/stream", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ question, history: earlierTurns(), ...scope }),
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
    const waited = performance.now() - began;
    finishTurn(view, result, waited);
    conversation.turns.push({ question, result, waited, scope });
    remember(conversation);
  } catch (error) {
    failTurn(view, plain(error), question, scope);
    if (error.status === 401) {
      openSide("docs", "Documents", $("question"));
      askForKey(null, "This server needs an API key to answer questions. Enter it, then ask again.");
    }
  } finally {
    state.busy = false;
    $("send").disabled = false;
  }
}

// ---------- conversations, kept in this browser ----------

function loadConversations() {
  try {
    const saved = JSON.parse(localStorage.getItem(CONV_STORE) || "[]");
    return Array.isArray(saved) ? saved.filter((c) => c && typeof c.id === "string" && Array.isArray(c.turns)) : [];
  } catch {
    return []; // unreadable: start afresh rather than break the page
  }
}

function saveConversations() {
  const kept = state.conversations.filter((c) => c.turns.length).slice(0, MAX_CONVERSATIONS);
  for (;;) {
    try {
      localStorage.setItem(CONV_STORE, JSON.stringify(kept));
      localStorage.setItem(CURRENT_STORE, state.conversation.id);
      return;
    } catch { // the browser's storage is full: the oldest conversations make room
      if (kept.length <= 1) return;
      kept.pop();
    }
  }
}

function freshConversation() {
  return { id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`, turns: [], updated: Date.now() };
}

// A conversation that gained a turn moves to the top of the list, and is saved at once
function remember(conversation) {
  conversation.updated = Date.now();
  state.conversations = [conversation, ...state.conversations.filter((c) => c !== conversation)];
  saveConversations();
  if (!$("convs-view").hidden) listConversations();
}

function showConversation(conversation) {
  state.conversation = conversation;
  $("turns").replaceChildren();
  $("intro").hidden = conversation.turns.length > 0;
  for (const t of conversation.turns) finishTurn(newTurn(t.question, t.scope), t.result, t.waited, true);
  const last = $("turns").lastElementChild;
  if (last) last.scrollIntoView({ block: "start" });
  if (conversation.turns.length) localStorage.setItem(CURRENT_STORE, conversation.id);
}

// A new conversation keeps the current one in the list: nothing is lost by starting over.
function startOver() {
  if (state.busy) {
    $("ask-error").textContent = "An answer is still coming; start a new conversation when it is done.";
    return;
  }
  const kept = state.conversation.turns.length > 0;
  showConversation(freshConversation());
  closeSide();
  $("question").value = "";
  $("question").focus();
  $("announce").textContent = kept ? "New conversation. The previous one is kept under Conversations." : "New conversation.";
}

function conversationTitle(conversation) {
  const first = conversation.turns[0]?.question ?? "";
  return first.length > 90 ? `${first.slice(0, 90)}…` : first;
}

function listConversations() {
  const list = $("conv-list");
  const saved = state.conversations.filter((c) => c.turns.length);
  list.replaceChildren();
  if (!saved.length) list.append(el("li", "notice", "No conversations yet: ask a question."));
  for (const conversation of saved) {
    const item = el("li", "doc conv");
    const open = el("button", "link conv-open", conversationTitle(conversation));
    open.type = "button";
    if (conversation === state.conversation) open.setAttribute("aria-current", "true");
    open.addEventListener("click", () => {
      if (state.busy) return;
      showConversation(conversation);
      closeSide();
    });
    const when = new Date(conversation.updated).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    const about = el("div", "doc-about");
    about.append(open, el("span", "doc-meta", `${counted(conversation.turns.length, "question")} · ${when}`));
    const remove = el("button", "danger", "Delete");
    remove.type = "button";
    remove.setAttribute("aria-label", `Delete the conversation “${conversationTitle(conversation)}”`);
    remove.addEventListener("click", () => armed(remove, () => {
      state.conversations = state.conversations.filter((c) => c !== conversation);
      if (conversation === state.conversation) showConversation(freshConversation());
      saveConversations();
      listConversations();
    }));
    item.append(about, remove);
    list.append(item);
  }
}

function showConversations() {
  openSide("convs", "Conversations", $("open-convs"));
  listConversations();
  $("side-title").focus({ preventScroll: true });
}

// ---------- scope: which documents to search, and how many passages to read ----------

function scopeWords(docIds) {
  if (docIds.length === 1) {
    const doc = state.documents.find((d) => d.doc_id === docIds[0]);
    return doc ? `“${doc.title}”` : "1 document";
  }
  return `${docIds.length} of ${counted(state.documents.length, "document")}`;
}

function currentScope() {
  const scope = {};
  if (!$("scope-all").checked) {
    scope.doc_ids = [...document.querySelectorAll("#scope-docs input:checked")].map((box) => box.value);
  }
  const k = $("top-k").value.trim();
  if (k) scope.top_k = Number(k);
  return scope;
}

// What is wrong with the chosen scope, in words, or "" when it can be sent
function scopeProblem(scope) {
  const most = state.info.limits.top_k;
  if (scope.doc_ids && !scope.doc_ids.length) return "Choose at least one document to search, or All documents.";
  if ("top_k" in scope && !(Number.isInteger(scope.top_k) && scope.top_k >= 1 && scope.top_k <= most)) {
    return `Passages to read: a whole number from 1 to ${most}.`;
  }
  return "";
}

function describeScope() {
  const scope = currentScope();
  const where = scope.doc_ids ? `Searching ${scopeWords(scope.doc_ids)}` : "Searching every document";
  $("scope-summary").textContent = "top_k" in scope ? `${where} · ${counted(scope.top_k, "passage")}` : where;
}

function fillScope(documents) {
  const box = $("scope-docs");
  const left = new Set([...box.querySelectorAll("input:not(:checked)")].map((i) => i.value));
  box.replaceChildren();
  for (const doc of documents) {
    const label = el("label", "scope-doc");
    const input = el("input");
    input.type = "checkbox";
    input.value = doc.doc_id;
    input.checked = !left.has(doc.doc_id);
    input.disabled = $("scope-all").checked;
    label.append(input, ` ${doc.title}`);
    box.append(label);
  }
  $("scope-filter").hidden = documents.length <= 12; // a long collection: find titles by typing
  filterScope();
  describeScope();
}

function filterScope() {
  const words = $("scope-filter").value.trim().toLowerCase();
  for (const label of $("scope-docs").children) {
    label.hidden = Boolean(words) && !label.textContent.toLowerCase().includes(words);
  }
}

// ---------- example questions, drawn from the collection's own titles ----------

function showExamples(documents) {
  const picks = [];
  const step = Math.max(1, Math.floor(documents.length / 3));
  for (let i = 0; i < documents.length && picks.length < 3; i += step) {
    const title = documents[i].title.trim();
    if (title) picks.push(title.endsWith("?") ? title : `What is “${title}” about?`);
  }
  const list = $("example-list");
  list.replaceChildren(...picks.map((q) => {
    const item = el("li");
    const button = el("button", "example", q);
    button.type = "button";
    button.addEventListener("click", () => {
      if (!state.busy) ask(q);
    });
    item.append(button);
    return item;
  }));
  $("examples").hidden = picks.length === 0;
}

// ---------- the side panel: a source document, or the documents list ----------

function openSide(view, title, opener) {
  hideTip();
  state.opener = opener || document.activeElement;
  $("side").hidden = false;
  document.body.classList.add("side-open");
  $("source-view").hidden = view !== "source";
  $("docs-view").hidden = view !== "docs";
  $("convs-view").hidden = view !== "convs";
  $("side-title").textContent = title;
  $("open-docs").setAttribute("aria-expanded", String(view === "docs"));
  $("open-convs").setAttribute("aria-expanded", String(view === "convs"));
}

function closeSide() {
  if ($("side").hidden) return;
  $("side").hidden = true;
  document.body.classList.remove("side-open");
  $("open-docs").setAttribute("aria-expanded", "false");
  $("open-convs").setAttribute("aria-expanded", "false");
  if (state.opener && document.contains(state.opener)) state.opener.focus();
}

// The stored document: text, and where available its blocks and page starts (code-point offsets)
async function storedDocument(docId) {
  if (!state.docs.has(docId)) {
    state.docs.set(docId, await api(`/v1/documents/${encodeURIComponent(docId)}`));
  }
  return state.docs.get(docId);
}

// Offsets count Unicode code points (as Python does); JavaScript strings index UTF-16 units. The UTF-16
// indexes of ascending code-point offsets, in one pass over the text.
function utf16Many(text, offsets) {
  const out = new Map();
  let i = 0;
  let n = 0;
  for (const want of offsets) {
    while (n < want && i < text.length) {
      const unit = text.charCodeAt(i);
      i += unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length ? 2 : 1;
      n += 1;
    }
    out.set(want, i);
  }
  return out;
}

const BLOCK_TAGS = { heading: "h3", code: "pre", signature: "pre", list_item: "div", table_row: "div", quote: "blockquote" };

// Draws `doc.text` by its structure: headings, paragraphs, list items, code and table rows, each an element
// of its own, with page marks and the span [start, end) (UTF-16) marked. Every character of the text is
// put in the page once and in order, so the page's text stays the stored text the offsets count in.
function drawDocument(body, doc, start, end) {
  const text = doc.text;
  const blocks = doc.blocks || [];
  const pages = doc.pages || [];
  const at = utf16Many(text, [...new Set([...blocks.flatMap((b) => [b.start, b.end]), ...pages])].sort((x, y) => x - y));
  const pageAt = new Map(pages.map((offset, i) => [at.get(offset), i + 1]));
  const marks = [];
  // [a, b) of the text into `into`: page marks where pages begin, the marked span in <mark>
  const fill = (into, a, b) => {
    const cuts = [a, b, ...[start, end].filter((x) => x > a && x < b)];
    for (const [offset] of pageAt) if (offset >= a && offset < b) cuts.push(offset);
    const sorted = [...new Set(cuts)].sort((x, y) => x - y);
    for (let i = 0; i < sorted.length - 1; i++) {
      const [x, y] = [sorted[i], sorted[i + 1]];
      if (pageAt.has(x)) into.append(pageMark(pageAt.get(x)));
      const piece = text.slice(x, y);
      if (start !== undefined && x >= start && y <= end && x < y) {
        const mark = el("mark", "", piece);
        marks.push(mark);
        into.append(mark);
      } else {
        into.append(document.createTextNode(piece));
      }
    }
  };
  body.replaceChildren();
  body.classList.toggle("structured", blocks.length > 0);
  let pos = 0;
  for (const block of blocks) {
    const [a, b] = [at.get(block.start), at.get(block.end)];
    if (a < pos) continue; // overlapping: drawn already
    if (a > pos) fill(body, pos, a);
    const node = el(BLOCK_TAGS[block.kind] || "p", `block block-${block.kind}`);
    if (block.kind === "heading") node.setAttribute("aria-level", String(Math.min(6, 2 + (block.level || 1))));
    fill(node, a, b);
    body.append(node);
    pos = b;
  }
  fill(body, pos, text.length);
  if (pageAt.has(text.length)) body.append(pageMark(pageAt.get(text.length)));
  return marks;
}

function pageMark(n) {
  const mark = el("span", "page-mark");
  mark.dataset.page = String(n); // drawn by CSS, so the page's text stays the document's text
  mark.setAttribute("role", "separator");
  mark.setAttribute("aria-label", `Page ${n}`);
  return mark;
}

// Opens the cited document beside the answer, the quoted span highlighted and scrolled into view.
// The page a code-point offset falls on, 1-based, or null for a document without pages
function pageOf(doc, offset) {
  const pages = doc.pages || [];
  let n = 0;
  while (n < pages.length && pages[n] <= offset) n += 1;
  return n || null;
}

// A link that opens the original file (a PDF) at a page, in the vendored pdf.js viewer
function originalLink(doc, page) {
  const link = el("a", "original", page ? `Open the original PDF at page ${page}` : "Open the original PDF");
  link.href = `/pdf.html?doc=${encodeURIComponent(doc.doc_id)}&page=${page || 1}`;
  link.target = "_blank";
  link.rel = "noopener";
  return link;
}

// Opens a document beside the answer: the cited span (if any) highlighted and scrolled into view.
async function openSource(span, opener) {
  const opening = ++state.openings; // a later click wins over a fetch still under way
  openSide("source", span.title, opener);
  const body = $("source-text");
  const meta = $("source-meta");
  body.replaceChildren();
  meta.replaceChildren("Loading the document…");
  const whole = span.start === undefined; // a document opened from the list: read from the top
  let doc, start, end;
  try {
    for (const fresh of [false, true]) {
      if (fresh) state.docs.delete(span.doc_id); // replaced since it was cached: fetch it again
      doc = await storedDocument(span.doc_id);
      if (whole) break;
      const at = utf16Many(doc.text, [span.start, span.end]);
      [start, end] = [at.get(span.start), at.get(span.end)];
      if (doc.text.slice(start, end) === (span.quote ?? span.text)) break;
    }
  } catch (error) {
    if (opening !== state.openings) return;
    meta.textContent = error.status === 404
      ? "This document has been deleted since the answer was given." : plain(error);
    return;
  }
  if (opening !== state.openings) return;
  const marks = drawDocument(body, doc, start, end);
  const view = $("source-view");
  const page = whole ? null : pageOf(doc, span.start);
  // Ids and offsets are for programs: a reader is told where the quote sits (the API gives the offsets)
  if (whole) {
    meta.replaceChildren(`${counted(Array.from(doc.text).length, "character")}${doc.pages?.length ? ` on ${counted(doc.pages.length, "page")}` : ""}.`);
  } else if (page) {
    meta.replaceChildren(`The quoted words are highlighted, on page ${page} of ${doc.pages.length}.`);
  } else {
    meta.replaceChildren(`The quoted words are highlighted, about ${Math.round((100 * start) / Math.max(1, doc.text.length))}% of the way into the document.`);
  }
  if (doc.pages?.length) meta.append(" ", originalLink(doc, page)); // a PDF: its file is kept
  // Scroll the panel only: scrollIntoView would scroll the conversation away as well.
  if (marks.length) {
    view.scrollTop += marks[0].getBoundingClientRect().top - view.getBoundingClientRect().top - view.clientHeight / 3;
  } else {
    view.scrollTop = 0;
  }
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
    collectionChanged(documents);
  } catch (error) {
    if (error.status === 401) askForKey(refreshDocuments, "This server needs an API key to read documents.");
    $("docs-error").textContent = plain(error);
  }
}

function documentItem(doc) {
  const item = el("li", "doc");
  const about = el("div", "doc-about");
  const open = el("button", "link doc-title", doc.title);
  open.type = "button";
  open.setAttribute("aria-label", `Read ${doc.title}`);
  open.addEventListener("click", () => openSource({ doc_id: doc.doc_id, title: doc.title }, $("open-docs")));
  about.append(open,
    el("span", "doc-meta", `${counted(doc.chars, "character")} · ${counted(doc.chunks, "passage")}`));
  const remove = el("button", "danger", "Delete");
  remove.type = "button";
  remove.setAttribute("aria-label", `Delete ${doc.title}`);
  remove.addEventListener("click", () => armed(remove, () => write(async () => {
    await api(`/v1/documents/${encodeURIComponent(doc.doc_id)}`, { method: "DELETE" });
    state.docs.delete(doc.doc_id);
    $("docs-status").textContent = `Deleted “${doc.title}”.`;
  })));
  item.append(about, remove);
  return item;
}

// A first click arms the button, a second one within five seconds acts: no modal dialog needed.
function armed(button, action) {
  if (button.dataset.armed !== "yes") {
    button.dataset.armed = "yes";
    button.textContent = "Delete for good?";
    setTimeout(() => {
      button.dataset.armed = "";
      button.textContent = "Delete";
    }, 5000);
    return;
  }
  action();
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

function collectionChanged(documents) {
  state.documents = documents;
  describeCollection(documents);
  fillScope(documents);
  showExamples(documents);
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
    const scope = currentScope();
    const problem = scopeProblem(scope);
    if (problem) {
      $("ask-error").textContent = problem;
      $("scope").open = true;
      return;
    }
    question.value = "";
    ask(text, scope);
  });
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("ask").requestSubmit();
    }
  });
  $("new-chat").addEventListener("click", startOver);
  $("open-convs").addEventListener("click", () => ($("side").hidden || $("convs-view").hidden ? showConversations() : closeSide()));
  $("scope-all").addEventListener("change", () => {
    document.querySelectorAll("#scope-docs input").forEach((box) => { box.disabled = $("scope-all").checked; });
    describeScope();
  });
  $("scope-docs").addEventListener("change", describeScope);
  $("scope-filter").addEventListener("input", filterScope);
  $("top-k").addEventListener("input", describeScope);
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
  state.conversations = loadConversations();
  const current = localStorage.getItem(CURRENT_STORE);
  showConversation(state.conversations.find((c) => c.id === current) ?? freshConversation());
  wire();
  try {
    state.info = await api("/v1/info");
    $("file").accept = state.info.upload_types.join(",");
    $("file-label").textContent = `Add a document (${state.info.upload_types.join(", ")}, up to ` +
      `${state.info.limits.body_mb} MB)`;
    $("top-k").max = String(state.info.limits.top_k);
    const { documents } = await api("/v1/documents");
    collectionChanged(documents);
  } catch (error) {
    $("collection").textContent = error.status === 401
      ? "This server needs an API key to read: open Documents to enter it." : plain(error);
  }
  $("question").focus();
}

start();
