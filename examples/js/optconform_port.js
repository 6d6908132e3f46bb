#!/usr/bin/env node
// optconform_port.js: a dependency-free Node.js port of the five optconform
// operations (mini_batches, momentum.init, momentum.update, adam.init,
// adam.update), speaking the optconform wire protocol: one JSON object per
// line on stdin, one JSON object per line on stdout, logs on stderr only.
//
//   optconform check --cmd "node examples/js/optconform_port.js"
//
// It doubles as a template for adapters in other languages: everything the
// protocol asks for (array encoding, conventions, errors, shutdown) is here.
"use strict";

const readline = require("readline");

const NAME = "optconform-js-port";
const PROTOCOL = "optconform/1";
const OPS = ["mini_batches", "momentum.init", "momentum.update", "adam.init", "adam.update", "gd.update",
  "rmsprop.init", "rmsprop.update", "lr_decay.inverse_time", "lr_decay.scheduled"];
const DECLARED = {
  "adam.epsilon": "outside_sqrt",
  "rmsprop.epsilon": "outside_sqrt",
  "momentum.form": "ema",
  "mini_batches.rng": "structural",
  "mini_batches.y_rows": "multi_row",
};
// Every convention this program knows, with the values it can compute.
const KNOWN = {
  "adam.epsilon": ["outside_sqrt", "inside_sqrt", "epsilon_hat"],
  "rmsprop.epsilon": ["outside_sqrt", "inside_sqrt"],
  "momentum.form": ["ema", "heavy_ball", "lr_scaled"],
  "mini_batches.rng": ["structural", "numpy_legacy"],
  "mini_batches.y_rows": ["one_row", "multi_row"],
};
const SUPPORTED = {
  "adam.epsilon": ["outside_sqrt", "inside_sqrt"],
  "rmsprop.epsilon": ["outside_sqrt", "inside_sqrt"],
  "momentum.form": ["ema", "heavy_ball"],
  "mini_batches.rng": ["structural"],
  "mini_batches.y_rows": ["one_row", "multi_row"],
};

function log(...parts) {
  process.stderr.write(`[${NAME}] ${parts.join(" ")}\n`);
}

class RequestError extends Error {}

function fail(message) {
  throw new RequestError(message);
}

// ---------------------------------------------------------------- arrays

const NON_FINITE = { nan: NaN, inf: Infinity, "-inf": -Infinity };

// Rounding for a dtype: float32 values are rounded after every operation,
// as NumPy does when it computes in float32; float64 needs none.
function rounder(dtype) {
  return dtype === "float32" ? Math.fround : (x) => x;
}

function isPlainObject(x) {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

// A JSON array object -> {dtype, shape, data: Float64Array}.
function decodeArray(obj, where) {
  if (!isPlainObject(obj)) fail(`${where}: expected an array object {dtype, shape, data}`);
  const keys = Object.keys(obj).sort().join(",");
  if (keys !== "data,dtype,shape") fail(`${where}: expected an object with exactly dtype, shape and data`);
  const { dtype, shape, data } = obj;
  if (dtype !== "float64" && dtype !== "float32") {
    fail(`${where}: dtype must be float64 or float32, not ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every((n) => Number.isInteger(n) && n >= 0)) {
    fail(`${where}: shape must be a list of non-negative integers`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (!Array.isArray(data) || data.length !== size) {
    fail(`${where}: data must be a list of ${size} numbers for shape [${shape.join(", ")}]`);
  }
  const r = rounder(dtype);
  const values = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const x = data[i];
    if (typeof x === "number") {
      values[i] = r(x);
    } else if (typeof x === "string" && Object.prototype.hasOwnProperty.call(NON_FINITE, x)) {
      values[i] = NON_FINITE[x];
    } else {
      fail(`${where}: data[${i}] is ${JSON.stringify(x)}, not a number or "nan", "inf", "-inf"`);
    }
  }
  if (dtype === "float32") {
    for (let i = 0; i < size; i++) {
      if (!Number.isFinite(values[i]) && typeof data[i] === "number") {
        fail(`${where}: data[${i}] does not fit in float32`);
      }
    }
  }
  return { dtype, shape: shape.slice(), data: values };
}

function encodeArray(arr) {
  const out = new Array(arr.data.length);
  for (let i = 0; i < arr.data.length; i++) {
    const x = arr.data[i];
    if (Number.isFinite(x)) out[i] = x;
    else out[i] = Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  }
  return { dtype: arr.dtype, shape: arr.shape.slice(), data: out };
}

function decodeTree(obj, where) {
  if (!isPlainObject(obj)) fail(`${where}: expected an object of named arrays`);
  const tree = {};
  for (const key of Object.keys(obj)) tree[key] = decodeArray(obj[key], `${where}.${key}`);
  return tree;
}

function encodeTree(tree) {
  const out = {};
  for (const key of Object.keys(tree)) out[key] = encodeArray(tree[key]);
  return out;
}

function sameShape(a, b) {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

// ------------------------------------------------------------ JSON output

// JSON.stringify writes -0 as "0" and NaN/Infinity as null; this writer keeps
// every finite float exact (JS's shortest round-trip form) and -0 as -0.0.
// Non-finite values never reach it: encodeArray has turned them into strings.
function dump(value) {
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "number":
      if (!Number.isFinite(value)) return "null";
      if (Object.is(value, -0)) return "-0.0";
      return String(value);
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return JSON.stringify(value);
    default:
      break;
  }
  if (Array.isArray(value)) return "[" + value.map(dump).join(",") + "]";
  const parts = [];
  for (const key of Object.keys(value)) {
    if (value[key] !== undefined) parts.push(JSON.stringify(key) + ":" + dump(value[key]));
  }
  return "{" + parts.join(",") + "}";
}

// ------------------------------------------------------------- arguments

function argsOf(request, op) {
  const args = request.args === undefined ? {} : request.args;
  if (!isPlainObject(args)) fail(`${op}: args must be an object`);
  return args;
}

function scalar(args, name, op, fallback) {
  let x = args[name];
  if (x === undefined) {
    if (fallback === undefined) fail(`${op}: missing argument ${name}`);
    return fallback;
  }
  if (typeof x === "string" && Object.prototype.hasOwnProperty.call(NON_FINITE, x)) x = NON_FINITE[x];
  if (typeof x !== "number") fail(`${op}: ${name} must be a number, not ${JSON.stringify(x)}`);
  return x;
}

function integer(args, name, op, fallback) {
  const x = args[name] === undefined ? fallback : args[name];
  if (x === undefined) fail(`${op}: missing argument ${name}`);
  if (!Number.isInteger(x)) fail(`${op}: ${name} must be an integer, not ${JSON.stringify(x)}`);
  return x;
}

function tree(args, name, op) {
  if (args[name] === undefined) fail(`${op}: missing argument ${name}`);
  return decodeTree(args[name], name);
}

// ("W1", "dW1"), ("b1", "db1"), ... for L = floor(len(parameters) / 2) layers,
// exactly as the reference's slot_names().
function slotNames(parameters) {
  const layers = Math.floor(Object.keys(parameters).length / 2);
  const pairs = [];
  for (let l = 1; l <= layers; l++) {
    pairs.push([`W${l}`, `dW${l}`]);
    pairs.push([`b${l}`, `db${l}`]);
  }
  for (const [param] of pairs) {
    if (!(param in parameters)) {
      fail(`parameters: missing ${param} (expected W1, b1, ..., W${layers}, b${layers})`);
    }
  }
  return pairs;
}

// The same-named slot of another tree, checked against the parameter's shape.
function slot(treeObj, treeName, key, shape) {
  const arr = treeObj[key];
  if (arr === undefined) fail(`${treeName}: missing ${key}`);
  if (!sameShape(arr.shape, shape)) {
    fail(`${treeName}.${key}: shape [${arr.shape.join(", ")}] does not match the parameter's [${shape.join(", ")}]`);
  }
  return arr;
}

// NumPy promotion: float32 only when every operand is float32.
function resultDtype(...arrays) {
  return arrays.every((a) => a.dtype === "float32") ? "float32" : "float64";
}

// ----------------------------------------------------------- conventions

function conventionsOf(request) {
  const conventions = Object.assign({}, DECLARED);
  if (request.conventions === undefined || request.conventions === null) return conventions;
  if (!isPlainObject(request.conventions)) fail("conventions must be an object of name: value");
  for (const [name, value] of Object.entries(request.conventions)) {
    if (!(name in KNOWN)) fail(`unknown convention ${JSON.stringify(name)}; known: ${Object.keys(KNOWN).join(", ")}`);
    if (!KNOWN[name].includes(value)) {
      fail(`convention ${name} must be one of ${KNOWN[name].join(", ")}, not ${JSON.stringify(value)}`);
    }
    conventions[name] = value;
  }
  return conventions;
}

function requireSupported(conventions, name) {
  if (!SUPPORTED[name].includes(conventions[name])) {
    fail(`convention ${name}=${conventions[name]} is not supported by ${NAME} (supported: ${SUPPORTED[name].join(", ")})`);
  }
  return conventions[name];
}

// ------------------------------------------------------------------- RNG

// murmur3's 32-bit finaliser: a bijection on uint32.
function fmix32(h) {
  h = h >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// mulberry32, seeded from any integer seed (both 32-bit halves are used).
function makeRng(seed) {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  let state = (fmix32(lo) ^ fmix32((hi + 0x9e3779b9) >>> 0)) >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (z ^ (z >>> 14)) >>> 0;
  };
  // A uniform integer in [0, n), n <= 2**32, without modulo bias.
  const below = (n) => {
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = next();
      if (x < limit) return x % n;
    }
  };
  return { next, below };
}

function permutation(m, seed) {
  const perm = new Array(m);
  for (let i = 0; i < m; i++) perm[i] = i;
  const rng = makeRng(seed);
  for (let i = m - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
  return perm;
}

// ------------------------------------------------------------ operations

function takeColumns(arr, perm, start, stop) {
  const [rows, cols] = arr.shape;
  const width = stop - start;
  const data = new Float64Array(rows * width);
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < width; k++) data[i * width + k] = arr.data[i * cols + perm[start + k]];
  }
  return { dtype: arr.dtype, shape: [rows, width], data };
}

function opMiniBatches(args, conventions) {
  const op = "mini_batches";
  requireSupported(conventions, "mini_batches.rng");
  if (args.X === undefined) fail(`${op}: missing argument X`);
  if (args.Y === undefined) fail(`${op}: missing argument Y`);
  const X = decodeArray(args.X, "X");
  const Y = decodeArray(args.Y, "Y");
  if (X.shape.length !== 2) fail(`${op}: X must be 2-D (n_x, m), not shape [${X.shape.join(", ")}]`);
  if (Y.shape.length !== 2) fail(`${op}: Y must be 2-D (n_y, m), not shape [${Y.shape.join(", ")}]`);
  const m = X.shape[1];
  if (Y.shape[1] !== m) fail(`${op}: X has ${m} columns (examples) but Y has ${Y.shape[1]}`);
  const size = integer(args, "mini_batch_size", op, 64);
  if (size < 1) fail(`${op}: mini_batch_size must be a positive integer, not ${size}`);
  const seed = integer(args, "seed", op, 0);
  const perm = permutation(m, seed);
  const batches = [];
  for (let start = 0; start < m; start += size) {
    const stop = Math.min(start + size, m);
    batches.push([encodeArray(takeColumns(X, perm, start, stop)), encodeArray(takeColumns(Y, perm, start, stop))]);
  }
  return { batches };
}

function zerosLike(arr) {
  return { dtype: arr.dtype, shape: arr.shape.slice(), data: new Float64Array(arr.data.length) };
}

function zeroState(parameters) {
  const state = {};
  for (const [param, grad] of slotNames(parameters)) state[grad] = zerosLike(parameters[param]);
  return state;
}

function opMomentumInit(args) {
  const parameters = tree(args, "parameters", "momentum.init");
  return { v: encodeTree(zeroState(parameters)) };
}

function opAdamInit(args) {
  const parameters = tree(args, "parameters", "adam.init");
  return { v: encodeTree(zeroState(parameters)), s: encodeTree(zeroState(parameters)) };
}

// v = beta*v + gain*g; p = p - lr*v, with gain = 1 - beta (ema) or 1 (heavy_ball).
function opMomentumUpdate(args, conventions) {
  const op = "momentum.update";
  const form = requireSupported(conventions, "momentum.form");
  const parameters = tree(args, "parameters", op);
  const grads = tree(args, "grads", op);
  const v = tree(args, "v", op);
  const beta = scalar(args, "beta", op);
  const lr = scalar(args, "learning_rate", op);
  const gain = form === "ema" ? 1.0 - beta : 1.0;
  const newParameters = {};
  const newV = {};
  for (const [param, grad] of slotNames(parameters)) {
    const p = parameters[param];
    const g = slot(grads, "grads", grad, p.shape);
    const v0 = slot(v, "v", grad, p.shape);
    const dtype = resultDtype(p, g, v0);
    const r = rounder(dtype);
    const rBeta = r(beta);
    const rGain = r(gain);
    const rLr = r(lr);
    const n = p.data.length;
    const pOut = new Float64Array(n);
    const vOut = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const vi = r(r(rBeta * v0.data[i]) + r(rGain * g.data[i]));
      vOut[i] = vi;
      pOut[i] = r(p.data[i] - r(rLr * vi));
    }
    newParameters[param] = { dtype, shape: p.shape.slice(), data: pOut };
    newV[grad] = { dtype, shape: p.shape.slice(), data: vOut };
  }
  return { parameters: encodeTree(newParameters), v: encodeTree(newV) };
}

// v = b1*v + (1-b1)*g; s = b2*s + (1-b2)*g^2; vh = v/(1-b1^t); sh = s/(1-b2^t);
// p = p - lr*vh/(sqrt(sh)+eps) (outside_sqrt) or p - lr*vh/sqrt(sh+eps) (inside_sqrt).
function opAdamUpdate(args, conventions) {
  const op = "adam.update";
  const placement = requireSupported(conventions, "adam.epsilon");
  const parameters = tree(args, "parameters", op);
  const grads = tree(args, "grads", op);
  const v = tree(args, "v", op);
  const s = tree(args, "s", op);
  const t = scalar(args, "t", op);
  const lr = scalar(args, "learning_rate", op, 0.01);
  const beta1 = scalar(args, "beta1", op, 0.9);
  const beta2 = scalar(args, "beta2", op, 0.999);
  const epsilon = scalar(args, "epsilon", op, 1e-8);
  const correction1 = 1.0 - Math.pow(beta1, t);
  const correction2 = 1.0 - Math.pow(beta2, t);
  const newParameters = {};
  const newV = {};
  const newS = {};
  for (const [param, grad] of slotNames(parameters)) {
    const p = parameters[param];
    const g = slot(grads, "grads", grad, p.shape);
    const v0 = slot(v, "v", grad, p.shape);
    const s0 = slot(s, "s", grad, p.shape);
    const dtype = resultDtype(p, g, v0, s0);
    const r = rounder(dtype);
    const rB1 = r(beta1);
    const rB2 = r(beta2);
    const rG1 = r(1.0 - beta1);
    const rG2 = r(1.0 - beta2);
    const rC1 = r(correction1);
    const rC2 = r(correction2);
    const rEps = r(epsilon);
    const rLr = r(lr);
    const n = p.data.length;
    const pOut = new Float64Array(n);
    const vOut = new Float64Array(n);
    const sOut = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const gi = g.data[i];
      const vi = r(r(rB1 * v0.data[i]) + r(rG1 * gi));
      const si = r(r(rB2 * s0.data[i]) + r(rG2 * r(gi * gi)));
      const vHat = r(vi / rC1);
      const sHat = r(si / rC2);
      const denominator = placement === "outside_sqrt" ? r(r(Math.sqrt(sHat)) + rEps) : r(Math.sqrt(r(sHat + rEps)));
      vOut[i] = vi;
      sOut[i] = si;
      pOut[i] = r(p.data[i] - r(r(rLr * vHat) / denominator));
    }
    newParameters[param] = { dtype, shape: p.shape.slice(), data: pOut };
    newV[grad] = { dtype, shape: p.shape.slice(), data: vOut };
    newS[grad] = { dtype, shape: p.shape.slice(), data: sOut };
  }
  return { parameters: encodeTree(newParameters), v: encodeTree(newV), s: encodeTree(newS) };
}

// p = p - lr*g.
function opGdUpdate(args) {
  const op = "gd.update";
  const parameters = tree(args, "parameters", op);
  const grads = tree(args, "grads", op);
  const lr = scalar(args, "learning_rate", op);
  const newParameters = {};
  for (const [param, grad] of slotNames(parameters)) {
    const p = parameters[param];
    const g = slot(grads, "grads", grad, p.shape);
    const dtype = resultDtype(p, g);
    const r = rounder(dtype);
    const rLr = r(lr);
    const out = new Float64Array(p.data.length);
    for (let i = 0; i < out.length; i++) out[i] = r(p.data[i] - r(rLr * g.data[i]));
    newParameters[param] = { dtype, shape: p.shape.slice(), data: out };
  }
  return { parameters: encodeTree(newParameters) };
}

function opRmspropInit(args) {
  return { s: encodeTree(zeroState(tree(args, "parameters", "rmsprop.init"))) };
}

// s = b2*s + (1-b2)*g^2; p = p - lr*g/(sqrt(s)+eps) (outside_sqrt) or p - lr*g/sqrt(s+eps) (inside_sqrt).
function opRmspropUpdate(args, conventions) {
  const op = "rmsprop.update";
  const placement = requireSupported(conventions, "rmsprop.epsilon");
  const parameters = tree(args, "parameters", op);
  const grads = tree(args, "grads", op);
  const s = tree(args, "s", op);
  const beta2 = scalar(args, "beta2", op);
  const lr = scalar(args, "learning_rate", op);
  const epsilon = scalar(args, "epsilon", op, 1e-8);
  const newParameters = {};
  const newS = {};
  for (const [param, grad] of slotNames(parameters)) {
    const p = parameters[param];
    const g = slot(grads, "grads", grad, p.shape);
    const s0 = slot(s, "s", grad, p.shape);
    const dtype = resultDtype(p, g, s0);
    const r = rounder(dtype);
    const rB2 = r(beta2);
    const rG2 = r(1.0 - beta2);
    const rEps = r(epsilon);
    const rLr = r(lr);
    const n = p.data.length;
    const pOut = new Float64Array(n);
    const sOut = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const gi = g.data[i];
      const si = r(r(rB2 * s0.data[i]) + r(rG2 * r(gi * gi)));
      const denominator = placement === "outside_sqrt" ? r(r(Math.sqrt(si)) + rEps) : r(Math.sqrt(r(si + rEps)));
      sOut[i] = si;
      pOut[i] = r(p.data[i] - r(r(rLr * gi) / denominator));
    }
    newParameters[param] = { dtype, shape: p.shape.slice(), data: pOut };
    newS[grad] = { dtype, shape: p.shape.slice(), data: sOut };
  }
  return { parameters: encodeTree(newParameters), s: encodeTree(newS) };
}

function encodeNumber(x) {
  if (Number.isFinite(x)) return x;
  return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
}

// lr = lr0 / (1 + decay_rate * epoch_num).
function opLrInverseTime(args) {
  const op = "lr_decay.inverse_time";
  const lr0 = scalar(args, "learning_rate0", op);
  const epoch = scalar(args, "epoch_num", op);
  const decay = scalar(args, "decay_rate", op);
  return { learning_rate: encodeNumber(lr0 / (1.0 + decay * epoch)) };
}

// lr = lr0 / (1 + decay_rate * floor(epoch_num / time_interval)).
function opLrScheduled(args) {
  const op = "lr_decay.scheduled";
  const lr0 = scalar(args, "learning_rate0", op);
  const epoch = scalar(args, "epoch_num", op);
  const decay = scalar(args, "decay_rate", op);
  const interval = integer(args, "time_interval", op, 1000);
  if (interval < 1) fail(`${op}: time_interval must be a positive integer, not ${interval}`);
  return { learning_rate: encodeNumber(lr0 / (1.0 + decay * Math.floor(epoch / interval))) };
}

const HANDLERS = {
  mini_batches: opMiniBatches,
  "momentum.init": opMomentumInit,
  "momentum.update": opMomentumUpdate,
  "adam.init": opAdamInit,
  "adam.update": opAdamUpdate,
  "gd.update": opGdUpdate,
  "rmsprop.init": opRmspropInit,
  "rmsprop.update": opRmspropUpdate,
  "lr_decay.inverse_time": opLrInverseTime,
  "lr_decay.scheduled": opLrScheduled,
};

// ----------------------------------------------------------- the protocol

function helloResult() {
  return { name: NAME, protocol: PROTOCOL, ops: OPS.slice(), conventions: Object.assign({}, DECLARED) };
}

function oneLine(text) {
  return String(text).replace(/\s+/g, " ").trim() || "error";
}

// One request line -> [reply object, shouldExit].
function handleLine(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    return [{ id: null, ok: false, error: oneLine(`malformed request: not JSON (${err.message})`) }, false];
  }
  if (!isPlainObject(request)) {
    return [{ id: null, ok: false, error: "malformed request: expected a JSON object" }, false];
  }
  const id = request.id === undefined ? null : request.id;
  const op = request.op;
  try {
    if (typeof op !== "string") fail("malformed request: op must be a string");
    if (op === "hello") return [{ id, ok: true, result: helloResult() }, false];
    if (op === "shutdown") return [{ id, ok: true, result: {} }, true];
    if (!Object.prototype.hasOwnProperty.call(HANDLERS, op)) {
      fail(`unknown op ${JSON.stringify(op)}; this program implements ${OPS.join(", ")}`);
    }
    const conventions = conventionsOf(request);
    const args = argsOf(request, op);
    return [{ id, ok: true, result: HANDLERS[op](args, conventions) }, false];
  } catch (err) {
    if (!(err instanceof RequestError)) log(`internal error on ${JSON.stringify(op)}:`, err && err.stack);
    const prefix = err instanceof RequestError ? "" : "internal error: ";
    return [{ id, ok: false, error: oneLine(prefix + (err && err.message)) }, false];
  }
}

function main() {
  // A reader that went away (EPIPE) is a reason to stop, not to crash.
  process.stdout.on("error", (err) => {
    log(`stdout: ${err.code || err.message}; exiting`);
    process.exit(0);
  });
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  let done = false;
  rl.on("line", (line) => {
    if (done || line.trim() === "") return;
    let reply;
    let exit = false;
    try {
      [reply, exit] = handleLine(line);
    } catch (err) {
      log("internal error:", err && err.stack);
      reply = { id: null, ok: false, error: oneLine(`internal error: ${err && err.message}`) };
    }
    if (exit) {
      done = true;
      rl.close();
      process.stdout.write(dump(reply) + "\n", () => process.exit(0));
    } else {
      process.stdout.write(dump(reply) + "\n");
    }
  });
  rl.on("close", () => {
    if (!done) {
      done = true;
      // Exit once pending output is flushed.
      process.stdout.write("", () => process.exit(0));
    }
  });
}

main();
