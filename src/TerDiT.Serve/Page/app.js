// The page of `terdit serve`: asks the service for generations, follows each one through its server-sent events,
// shows the grid and keeps a history of the generations made since the page was opened. No other origin is used.
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;        // GET /v1/model
let current = null;      // { id, events } of the generation in progress

async function start() {
  const response = await fetch("/v1/model");
  model = await response.json();
  $("model").textContent = `${model.name}: ${model.classes.length} classes, ${model.image_size}×${model.image_size}, on ${model.device}`;
  for (const [index, name] of model.classes.entries()) $("class").add(new Option(name, String(index)));
  for (const name of model.samplers) $("sampler").add(new Option(name, name, name === model.defaults.sampler, name === model.defaults.sampler));
  for (const name of model.modes) $("mode").add(new Option(name, name, name === model.defaults.mode, name === model.defaults.mode));
  $("steps").max = model.limits.max_steps;
  $("per-class").max = model.limits.max_images_per_request;
  $("steps").value = model.defaults.steps;
  $("cfg").value = model.defaults.cfg;
  randomSeed();
  $("random-seed").addEventListener("click", randomSeed);
  $("form").addEventListener("submit", (event) => { event.preventDefault(); generate(); });
  $("cancel").addEventListener("click", cancel);
}

/** A seed below 2^53, so that it round-trips through JavaScript numbers exactly. */
function randomSeed() {
  const [bits] = crypto.getRandomValues(new BigUint64Array(1));
  $("seed").value = String(bits >> 11n);
}

async function generate() {
  const request = {
    class: model.classes[Number($("class").value)],
    per_class: Number($("per-class").value),
    steps: Number($("steps").value),
    sampler: $("sampler").value,
    cfg: Number($("cfg").value),
    seed: Number($("seed").value),
    mode: $("mode").value,
  };
  showError(null);
  busy(true);
  setProgress(0, request.steps, "queued…");
  const response = await fetch("/v1/generations", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request),
  });
  const body = await response.json();
  if (response.status !== 202) {
    busy(false);
    setProgress(0, 1, "");
    showError(problemText(body));
    return;
  }
  follow(body);
}

/** Follows a job through its events until it ends. */
function follow(job) {
  const events = new EventSource(job.links.events);
  current = { id: job.id, events };
  events.addEventListener("progress", (event) => showStatus(JSON.parse(event.data)));
  events.addEventListener("done", (event) => {
    events.close();
    current = null;
    busy(false);
    finished(JSON.parse(event.data));
  });
  events.onerror = () => {
    if (current?.events !== events) return;
    events.close();
    current = null;
    busy(false);
    showError("The connection to the service was lost.");
  };
}

function showStatus(job) {
  const p = job.progress;
  const where = job.state === "queued" ? `queued (${job.queue_position} ahead)` : `step ${p.step} of ${p.steps}`;
  setProgress(p.step, p.steps, where);
}

function finished(job) {
  showStatus(job);
  addHistory(job);
  if (job.state === "succeeded") show(job);
  else if (job.state === "cancelled") setProgress(0, 1, "cancelled");
  else showError(`The generation failed: ${job.error}`);
}

/** Shows a finished job's grid with its settings and download link. */
function show(job) {
  const s = job.settings;
  $("result").src = job.links.image;
  $("download").href = job.links.image;
  $("download").download = `terdit-${s.classes.join("_").replace(/[^A-Za-z0-9_-]+/g, "-")}-seed${s.seed}.png`;
  $("caption").textContent = describe(job);
  $("figure").hidden = false;
  $("status").textContent = `done: ${describe(job)}`;
}

function describe(job) {
  const s = job.settings;
  return `${s.classes.join(", ")} ×${s.per_class}, ${s.steps} ${s.sampler} steps, cfg ${s.cfg}, seed ${s.seed}, ${s.mode}`;
}

function addHistory(job) {
  const item = document.createElement("li");
  item.dataset.id = job.id;
  item.className = job.state;
  if (job.state === "succeeded") {
    const image = document.createElement("img");
    image.src = job.links.image;
    image.alt = describe(job);
    item.append(image);
    item.addEventListener("click", () => show(job));
  }
  item.append(`${job.state === "succeeded" ? "" : job.state + ": "}${describe(job)}`);
  $("history").prepend(item);
}

async function cancel() {
  if (!current) return;
  $("cancel").disabled = true;
  await fetch(`/v1/generations/${current.id}`, { method: "DELETE" });
}

function busy(on) {
  $("generate").disabled = on;
  $("cancel").disabled = !on;
}

function setProgress(value, max, text) {
  $("progress").max = max;
  $("progress").value = value;
  $("status").textContent = text;
}

function showError(text) {
  $("error").hidden = !text;
  $("error").textContent = text ?? "";
}

/** An RFC 7807 problem as text: its title, then each field's errors. */
function problemText(problem) {
  const lines = [problem.title ?? "The request failed", problem.detail].filter(Boolean);
  for (const [field, messages] of Object.entries(problem.errors ?? {})) lines.push(`${field}: ${messages.join(" ")}`);
  return lines.join("\n");
}

start().catch((error) => showError(`The service did not answer: ${error}`));
