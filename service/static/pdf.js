// citeqa's PDF viewer: /pdf.html?doc=<doc_id>&page=<n> draws page n of the document's original file
// (GET /v1/documents/{doc_id}/original) with the vendored pdf.js, and pages through it.
// Plain JavaScript, no build step; what comes from the server is put in the page with textContent.
import { GlobalWorkerOptions, getDocument } from "/static/vendor/pdfjs/pdf.min.mjs";

GlobalWorkerOptions.workerSrc = "/static/vendor/pdfjs/pdf.worker.min.mjs";

const KEY_STORE = "citeqa.api-key"; // the chat page's saved API key, sent when reads need it
const MAX_SCALE = 2; // CSS pixels per PDF point, at most: a wide window does not blow the page up further

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const docId = params.get("doc") || "";
const view = { pdf: null, page: 1, task: null };

function headers() {
  const key = localStorage.getItem(KEY_STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function fail(message) {
  $("status").hidden = true;
  $("page").hidden = true;
  $("error").textContent = message;
  $("error").hidden = false;
}

// In plain words: why there is no file to show, and what to do.
async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    message = (await response.json()).error?.message ?? message;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401) {
    return "This server needs an API key to read documents: enter it on the chat page, then open this page again.";
  }
  if (response.status === 404) return `There is no original file to show for “${docId}”. ${message}`;
  return `The original file could not be loaded: ${message}`;
}

function wanted(value, pages) {
  const n = Number.parseInt(value, 10);
  return Number.isFinite(n) ? Math.min(Math.max(n, 1), pages) : 1;
}

async function show(number) {
  const pdf = view.pdf;
  view.page = wanted(number, pdf.numPages);
  $("counter").textContent = `${view.page} / ${pdf.numPages}`;
  $("prev").disabled = view.page <= 1;
  $("next").disabled = view.page >= pdf.numPages;
  params.set("page", String(view.page));
  history.replaceState(null, "", `${location.pathname}?${params}`);
  view.task?.cancel(); // a page asked for while another draws: only the last one is drawn
  const page = await pdf.getPage(view.page);
  const fit = (document.querySelector("main").clientWidth - 32) / page.getViewport({ scale: 1 }).width;
  const scale = Math.min(Math.max(fit, 0.5), MAX_SCALE);
  const ratio = window.devicePixelRatio || 1;
  const viewport = page.getViewport({ scale: scale * ratio });
  const canvas = $("page");
  canvas.width = Math.floor(viewport.width);
  canvas.height = Math.floor(viewport.height);
  canvas.style.width = `${Math.floor(viewport.width / ratio)}px`;
  const task = page.render({ canvas, viewport });
  view.task = task;
  try {
    await task.promise;
  } catch (error) {
    if (error?.name === "RenderingCancelledException") return;
    throw error;
  }
  canvas.dataset.page = String(view.page); // drawn: what the tests wait for
  canvas.setAttribute("aria-label", `Page ${view.page} of ${pdf.numPages}`);
  $("status").hidden = true;
  canvas.hidden = false;
}

async function open() {
  if (!docId) {
    fail("No document named: open this page as /pdf.html?doc=<doc_id>&page=<n>, or from a citation on the chat page.");
    return;
  }
  $("title").textContent = docId;
  document.title = `${docId} · citeqa`;
  const response = await fetch(`/v1/documents/${encodeURIComponent(docId)}/original`, { headers: headers() });
  if (!response.ok) {
    fail(await failure(response));
    return;
  }
  const data = new Uint8Array(await response.arrayBuffer());
  view.pdf = await getDocument({ data, isEvalSupported: false }).promise;
  const title = (await view.pdf.getMetadata().catch(() => null))?.info?.Title;
  if (title) {
    $("title").textContent = title;
    document.title = `${title} · citeqa`;
  }
  await show(params.get("page"));
}

$("prev").addEventListener("click", () => show(view.page - 1).catch(broken));
$("next").addEventListener("click", () => show(view.page + 1).catch(broken));
document.addEventListener("keydown", (event) => {
  if (!view.pdf || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === "ArrowLeft" || event.key === "PageUp") show(view.page - 1).catch(broken);
  if (event.key === "ArrowRight" || event.key === "PageDown") show(view.page + 1).catch(broken);
});

function broken(error) {
  fail(`The file could not be shown: ${error?.message ?? error}`);
}

open().catch(broken);
