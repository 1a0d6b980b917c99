// scim-server.js — a real, third-party SCIM 2.0 service provider for scimsync's tests.
//
// Adapted from the team harness (shared/harness/scim-server.js); this copy is the project's own.
// The SCIM protocol work (RFC 7643 schema validation and coercion, RFC 7644 filters, PATCH
// PatchOp application, ListResponse building and sorting, /Bulk, /Schemas, /ResourceTypes,
// /ServiceProviderConfig, /.search, SCIM error documents) is done by SCIMMY + scimmy-routers
// (npm, MIT, https://github.com/scimmyjs). This file only supplies what SCIMMY leaves to the
// application: an in-memory resource store (ingress/egress/degress handlers), id/meta
// generation, list pages cut from the store (startIndex/count, see page()),
// userName uniqueness (409), group-member reference checks, auth (bearer, basic,
// an OAuth2 client-credentials token endpoint), HTTPS and mTLS listeners, and a small
// out-of-band /_control API for tests (request log, fault injection, token control). Nothing
// under /_control or /oauth is SCIM; the SCIM endpoints themselves are exactly SCIMMY's.
//
// Every listener binds 127.0.0.1 only. All listeners share one store. Environment:
//   SCIM_PORT            plain HTTP port (default 8880)
//   SCIM_HTTPS_PORT      with SCIM_TLS_CERT/SCIM_TLS_KEY (PEM): also serve HTTPS on this port
//   SCIM_MTLS_PORT       with SCIM_TLS_CERT/SCIM_TLS_KEY/SCIM_TLS_CA: also serve HTTPS on this port,
//                        requiring a client certificate signed by SCIM_TLS_CA
//   SCIM_BASE            mount path of the SCIM API (default /scim/v2)
//   SCIM_TOKEN           if set, "Authorization: Bearer <token>" is accepted
//   SCIM_BASIC_USER / SCIM_BASIC_PASSWORD   if set, HTTP Basic is accepted
//   SCIM_OAUTH_CLIENT_ID / SCIM_OAUTH_CLIENT_SECRET  if set, POST /oauth/token issues bearer
//                        tokens (RFC 6749 §4.4 client credentials; client_secret_basic or
//                        client_secret_post), accepted until they expire or are revoked
//   SCIM_OAUTH_TTL       lifetime of issued tokens in seconds (default 3600; see /_control/oauth)
//                        (no SCIM_TOKEN, SCIM_BASIC_USER nor SCIM_OAUTH_CLIENT_ID: every request is accepted)
//   SCIM_ENTERPRISE      "0" to NOT attach the enterprise User extension (default attached, optional)
//   SCIM_STRICT_MEMBERS  "0" to accept group members whose value is not a known User/Group id
//   SCIM_LOG_BODIES      "0" to keep only method/path/status in the request log
//   SCIM_STRICT_ATTRS    "0" to let SCIMMY silently drop unknown attributes in POST/PUT bodies
//                        (default: reject them with 400 invalidSyntax — SCIMMY itself ignores
//                        them, which would hide a misspelt mapping in the engine under test)
//   SCIM_BULK            "0" to neither advertise nor serve POST /Bulk (501, as SCIMMY answers when
//                        bulk.supported is false); default served and advertised
//   SCIM_BULK_MAX_OPERATIONS / SCIM_BULK_MAX_PAYLOAD  the bulk.maxOperations and maxPayloadSize (bytes)
//                        advertised and enforced (413 beyond them; default SCIMMY's 1000 and 1048576)
//
// Every check and capture of this file (unknown attributes, member references, userName
// uniqueness, refused passwords, strict mode, /_control/passwords) applies to each operation of a
// POST /Bulk exactly as to the same request sent alone: that operation alone fails, with the same
// status and scimType (see guardWrites).
//
// /_control API (no auth, loopback only; on every listener):
//   GET    /_control/health                -> 200 {"ok":true,"pid":N,...counts,"bulkChecks":true} (pid: start-scim.sh
//                                             checks it is its own server that answers, not another on a port it
//                                             lost; bulkChecks: the checks below see into POST /Bulk)
//   GET    /_control/requests              -> [{seq,time,method,path,query,body,status,ms,userAgent,scheme}, ...]
//                                             (?userAgent=X keeps only requests sent with that User-Agent)
//                                             One entry per HTTP request: a POST /Bulk is one entry whose
//                                             body is the BulkRequest (passwords withheld) and whose
//                                             operations lists [{method,path,bulkId,status,scimType,location}],
//                                             each operation's outcome
//   DELETE /_control/requests              -> clears the request log
//   POST   /_control/faults  {"status":429,"count":2,"retryAfter":1,"method":"PATCH","path":"/Users",
//                             "userAgent":"x","delayMs":0,"drop":false,"body":"...","contentType":"text/html"}
//          -> the next <count> SCIM requests matching method, path prefix (relative to SCIM_BASE)
//             and exact User-Agent (each optional) are delayed by delayMs, then: drop=true closes
//             the connection without an answer; status > 0 answers that status (Retry-After when
//             retryAfter is given, seconds or an HTTP-date string; a SCIM error body unless body/
//             contentType give another one); status 0 lets the request through. GET lists, DELETE clears.
//             Tests match on a User-Agent of their own so that parallel tests never see each
//             other's faults.
//   GET    /_control/oauth                 -> {"tokenRequests":[{time,userAgent,ttl,ok}],"ttl":..,"ttlByUserAgent":{}}
//                                             (?userAgent=X filters tokenRequests)
//   POST   /_control/oauth/ttl    {"ttl":2,"userAgent":"x"}  -> tokens issued to that User-Agent (or,
//                                             without userAgent, to everyone) live ttl seconds
//   POST   /_control/oauth/revoke {"userAgent":"x"}          -> revoke the tokens issued to that
//                                             User-Agent (or all): they get 401 from then on
//   POST   /_control/strict {"userAgent":"x","rejectFilteredPaths":true,"scimType":"invalidPath"}
//          -> strict mode, like real services that implement less of RFC 7644 §3.5.2: from then on
//             a PATCH (alone or in a POST /Bulk) sent with that User-Agent (or, without userAgent,
//             any PATCH) whose operations include a path with a value filter (emails[type eq
//             "other"], emails[type eq "work"].value, members[value eq "id"]) is answered 400 with
//             that scimType (default invalidPath; "" for none, "noTarget" and "invalidFilter" as
//             other services answer) and is not applied.
//             "rejectFilteredPaths":false turns it off again. GET lists the settings; DELETE clears
//             them (?userAgent=X: only that User-Agent's).
//   GET    /_control/passwords?userAgent=X -> [{id,userName,password,method,time}]: the last password
//             each User received (POST or PUT body, PATCH replace/add of password, alone or as an
//             operation of a POST /Bulk) in a request with that User-Agent and carried out, for
//             password sync tests (method: the operation's, never "Bulk"). Passwords are kept
//             here only: the request log shows each as "(withheld)", and nothing prints them.
//   POST   /_control/passwords/refuse {"userAgent":"x","status":400,"scimType":"mutability"}
//             -> a request with that User-Agent that carries a password (or a Bulk operation that
//             does) is refused so, as by a service that does not accept password writes; DELETE
//             /_control/passwords/refuse (?userAgent=X) ends it. A status and scimType that RFC 7644
//             §3.12 does not pair (SCIMMY could not answer with them) are refused with 400.
//   POST   /_control/bulk {"supported":true,"maxOperations":10,"maxPayloadSize":4096}
//          -> sets what /ServiceProviderConfig advertises for bulk and what POST /Bulk enforces
//             (413 over either limit; 501 when not supported), for the whole server: use it on a
//             private server (scimtest.Private) only. GET shows the current bulk settings.
//   POST   /_control/reset                 -> empties users, groups, log, faults, tokens and strict settings
//   GET    /_control/dump                  -> {"Users":[...],"Groups":[...]} as stored
import express from "express";
import http from "node:http";
import https from "node:https";
import fs from "node:fs";
import crypto from "node:crypto";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const PORT = Number(process.env.SCIM_PORT || 8880);
const HTTPS_PORT = Number(process.env.SCIM_HTTPS_PORT || 0);
const MTLS_PORT = Number(process.env.SCIM_MTLS_PORT || 0);
const HOST = "127.0.0.1";
const BASE = (process.env.SCIM_BASE || "/scim/v2").replace(/\/$/, "");
const TOKEN = process.env.SCIM_TOKEN || "";
const BASIC_USER = process.env.SCIM_BASIC_USER || "";
const BASIC_PASSWORD = process.env.SCIM_BASIC_PASSWORD || "";
const OAUTH_CLIENT_ID = process.env.SCIM_OAUTH_CLIENT_ID || "";
const OAUTH_CLIENT_SECRET = process.env.SCIM_OAUTH_CLIENT_SECRET || "";
const STRICT_MEMBERS = process.env.SCIM_STRICT_MEMBERS !== "0";
const LOG_BODIES = process.env.SCIM_LOG_BODIES !== "0";
const STRICT_ATTRS = process.env.SCIM_STRICT_ATTRS !== "0";
const LOG_LIMIT = 20000;

// ---------------------------------------------------------------------------------------------
// In-memory store. Values are plain JSON objects as SCIMMY hands them to us (already validated
// and coerced against the schema), plus id and meta.
// ---------------------------------------------------------------------------------------------
const store = { Users: new Map(), Groups: new Map() };
// lower-cased userName -> id; keeps uniqueness checks and `userName eq "x"` lookups O(1) so the
// peer does not become the bottleneck of a benchmark with many thousands of users.
const userNameIndex = new Map();
let requestLog = [];
let seq = 0;
let faults = [];
// Strict mode (POST /_control/strict): User-Agent ("" = everyone) -> {rejectFilteredPaths, scimType}.
const strict = new Map();
// Password sync (GET /_control/passwords): User id -> {id, userName, password, method, time,
// userAgent}; refusals (POST /_control/passwords/refuse): User-Agent -> {status, scimType}.
const passwords = new Map();
const refusePasswords = new Map();
// OAuth2: issued access token -> {expires (ms epoch), userAgent}; token TTLs; token request log.
const oauth = {
  tokens: new Map(),
  ttl: Number(process.env.SCIM_OAUTH_TTL || 3600),
  ttlByUserAgent: new Map(),
  requests: [],
};

const plain = (v) => JSON.parse(JSON.stringify(v));
const now = () => new Date().toISOString();
const scimError = (status, scimType, detail) => new SCIMMY.Types.Error(status, scimType, detail);

function nextVersion(old) {
  const n = old?.meta?.version ? Number(String(old.meta.version).replace(/\D/g, "")) + 1 : 1;
  return `W/"${n}"`;
}

// userName is caseExact=false in RFC 7643 §4.1.1, so uniqueness is case-insensitive.
function assertUniqueUserName(userName, selfId) {
  const owner = userNameIndex.get(String(userName).toLowerCase());
  if (owner !== undefined && owner !== selfId) {
    throw scimError(409, "uniqueness", `userName "${userName}" is already taken by ${owner}`);
  }
}

function assertMembersExist(members) {
  if (!STRICT_MEMBERS || !Array.isArray(members)) return;
  for (const m of members) {
    if (!store.Users.has(m.value) && !store.Groups.has(m.value)) {
      throw scimError(400, "invalidValue", `member value "${m.value}" is not the id of a known User or Group`);
    }
  }
}

// Filter with SCIMMY's own Filter engine (resource.filter is a SCIMMY.Types.Filter). A lone
// `userName eq "x"` first narrows the candidates through the index (then SCIMMY still decides).
function list(kind, resource) {
  let all;
  const f = resource.filter;
  if (kind === "Users" && f && f.length === 1) {
    const keys = Object.keys(f[0]);
    const expr = f[0][keys[0]];
    if (keys.length === 1 && keys[0].toLowerCase() === "username" && Array.isArray(expr)
        && expr.length === 2 && String(expr[0]).toLowerCase() === "eq") {
      const id = userNameIndex.get(String(expr[1]).toLowerCase());
      all = id && store.Users.has(id) ? [store.Users.get(id)] : [];
    }
  }
  all ??= [...store[kind].values()];
  return f ? f.match(all) : all;
}

// Paging (RFC 7644 §3.4.2.4). SCIMMY pages in its ListResponse, after the egress handler has
// returned the whole collection and SCIMMY has built a resource of each: a page at 5 000 users
// cost 1.4-2 s, nearly all of it spent on resources that are thrown away. So the egress handler
// cuts the page itself, from the store in insertion order (a Map keeps it; an update keeps its
// place) when there is no filter — only the page is copied and built, the rest is skipped by the
// iterator — and from SCIMMY's filter result when there is one (the filter stays SCIMMY's).
// startIndex is 1-based (less than 1 is 1); count is 20 when absent, as SCIMMY has it, capped
// by filter.maxResults of the ServiceProviderConfig, and 0 or less gives totalResults only. With sortBy SCIMMY still sorts and pages the whole filtered set (count capped
// the same way). The root /.search merges Users and Groups and pages the merged list itself
// (its count capped in keepQuery), so each type hands it its whole filtered set — SCIMMY alone cut
// each to 20 first.
const DEFAULT_COUNT = 20;
const maxResults = () => Number(SCIMMY.Config.get()?.filter?.maxResults) || 200;

function page(kind, resource, ctx) {
  const c = resource.constraints ?? {};
  if (ctx?.rootSearch) {
    const all = list(kind, resource);
    resource.constraints = { ...c, startIndex: 1, count: all.length };
    return all;
  }
  const count = Math.max(0, Math.min(c.count ?? DEFAULT_COUNT, maxResults()));
  if (c.sortBy !== undefined) {
    resource.constraints = { ...c, count };
    return list(kind, resource);
  }
  const start = Math.max(1, c.startIndex ?? 1);
  let total, items;
  if (!resource.filter) {
    total = store[kind].size;
    items = [];
    let i = 0;
    for (const v of store[kind].values()) {
      if (items.length >= count) break;
      if (++i >= start) items.push(v);
    }
  } else {
    const all = list(kind, resource);
    total = all.length;
    items = all.slice(start - 1, start - 1 + count);
  }
  // The items are the page already: tell SCIMMY's ListResponse so (startIndex 1, this many, of
  // total) so that it cuts nothing; readPaged puts the real startIndex back.
  resource.constraints = { ...c, startIndex: 1, count: items.length, totalResults: total };
  resource.pageStart = start;
  return items;
}

function egressFor(kind) {
  return (resource, ctx) => {
    if (resource.id) {
      const found = store[kind].get(resource.id);
      if (!found) throw scimError(404, null, `Resource ${resource.id} not found`);
      return plain(found);
    }
    return page(kind, resource, ctx).map(plain);
  };
}

// readPaged wraps a SCIMMY resource class's read so that a page cut by page() reports the
// startIndex it was asked for (SCIMMY's ListResponse was told 1 so as not to cut it again).
function readPaged(Resource) {
  const read = Resource.prototype.read;
  Resource.prototype.read = async function readPage(ctx) {
    const out = await read.call(this, ctx);
    if (this.pageStart !== undefined && Array.isArray(out?.Resources)) out.startIndex = this.pageStart;
    return out;
  };
}

function degressFor(kind) {
  return (resource) => {
    const gone = store[kind].get(resource.id);
    if (!gone) throw scimError(404, null, `Resource ${resource.id} not found`);
    store[kind].delete(resource.id);
    if (kind === "Users") userNameIndex.delete(String(gone.userName).toLowerCase());
    // Like most real providers, drop the deleted resource from every group's members.
    for (const g of store.Groups.values()) {
      if (Array.isArray(g.members) && g.members.some((m) => m.value === resource.id)) {
        g.members = g.members.filter((m) => m.value !== resource.id);
        g.meta.lastModified = now();
        g.meta.version = nextVersion(g);
      }
    }
  };
}

function ingressFor(kind) {
  return (resource, instance) => {
    const data = plain(instance);
    delete data.meta; // meta is read-only; SCIMMY already drops it on "in", be explicit
    const old = resource.id ? store[kind].get(resource.id) : undefined;
    if (resource.id && !old) throw scimError(404, null, `Resource ${resource.id} not found`);
    if (kind === "Users") assertUniqueUserName(data.userName, resource.id);
    if (kind === "Groups") assertMembersExist(data.members);
    const id = resource.id ?? crypto.randomUUID();
    const stamp = now();
    const stored = {
      ...data,
      id,
      meta: {
        resourceType: kind === "Users" ? "User" : "Group",
        created: old?.meta?.created ?? stamp,
        lastModified: stamp,
        version: nextVersion(old),
      },
    };
    store[kind].set(id, stored);
    if (kind === "Users") {
      if (old) userNameIndex.delete(String(old.userName).toLowerCase());
      userNameIndex.set(String(stored.userName).toLowerCase(), id);
    }
    return plain(stored);
  };
}

// ---------------------------------------------------------------------------------------------
// SCIMMY declarations
// ---------------------------------------------------------------------------------------------
SCIMMY.Resources.declare(SCIMMY.Resources.User)
  .ingress(ingressFor("Users"))
  .egress(egressFor("Users"))
  .degress(degressFor("Users"));
if (process.env.SCIM_ENTERPRISE !== "0") {
  SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false);
}
SCIMMY.Resources.declare(SCIMMY.Resources.Group)
  .ingress(ingressFor("Groups"))
  .egress(egressFor("Groups"))
  .degress(degressFor("Groups"));
readPaged(SCIMMY.Resources.User);
readPaged(SCIMMY.Resources.Group);
guardWrites(SCIMMY.Resources.User, "Users");
guardWrites(SCIMMY.Resources.Group, "Groups");

// guardWrites puts the test server's own checks and captures on a SCIMMY resource class's write
// (POST, PUT) and patch (PATCH): unknown attributes (SCIM_STRICT_ATTRS), refused passwords
// (/_control/passwords/refuse), strict mode's value-filtered PATCH paths (/_control/strict), and
// the capture of each password a User received (/_control/passwords). scimmy-routers calls these
// methods for a single request and SCIMMY's BulkRequest for each operation of a POST /Bulk, so a
// Bulk operation is checked and captured exactly as the same request sent alone, and fails on its
// own with the status and scimType that request would get (the ingress handler's 409 uniqueness
// and 400 member checks already run for both). ctx is the router's context (userAgent: the
// request's, the Bulk request's for its operations). A PATCH's own write of the patched resource
// is not checked again: it holds the stored resource, password included, not what was sent.
function guardWrites(Resource, kind) {
  const { write, patch } = Resource.prototype;
  const inPatch = Symbol("inPatch");
  Resource.prototype.write = async function guardedWrite(instance, ctx) {
    if (ctx?.[inPatch]) return write.call(this, instance, ctx);
    const method = this.id ? "PUT" : "POST";
    assertKnownAttributes(kind, instance);
    const pw = kind === "Users" ? passwordIn(method, instance) : undefined;
    if (pw !== undefined) assertPasswordTaken(ctx);
    const out = await write.call(this, instance, ctx);
    if (pw !== undefined) recordPassword(out?.id ?? this.id, pw, method, ctx);
    return out;
  };
  Resource.prototype.patch = async function guardedPatch(message, ctx) {
    const pw = kind === "Users" ? passwordIn("PATCH", message) : undefined;
    if (pw !== undefined) assertPasswordTaken(ctx);
    assertPatchPaths(message, ctx);
    const out = await patch.call(this, message, { ...ctx, [inPatch]: true });
    if (pw !== undefined) recordPassword(this.id, pw, "PATCH", ctx);
    return out;
  };
}

// Names (lower-cased) allowed at each level of a resource body, from SCIMMY's own definitions.
function allowedNames(definition) {
  const top = new Map();
  for (const a of definition.attributes) {
    if (a.constructor.name === "SchemaDefinition") {            // attached extension: key is its URN
      top.set(a.id.toLowerCase(), allowedNames(a));
    } else {
      top.set(a.name.toLowerCase(), a.subAttributes ? new Map(a.subAttributes.map((s) => [s.name.toLowerCase(), null])) : null);
    }
  }
  return top;
}
function unknownAttributes(body, allowed, prefix = "") {
  const bad = [];
  if (!body || typeof body !== "object" || Array.isArray(body)) return bad;
  for (const [k, v] of Object.entries(body)) {
    const sub = allowed.get(k.toLowerCase());
    if (sub === undefined) { bad.push(prefix + k); continue; }
    if (sub instanceof Map) {
      for (const item of Array.isArray(v) ? v : [v]) bad.push(...unknownAttributes(item, sub, `${prefix}${k}.`));
    }
  }
  return bad;
}
// assertKnownAttributes refuses a POST or PUT body (single, or a Bulk operation's data) that holds
// attributes the resource type does not define, as 400 invalidSyntax (SCIM_STRICT_ATTRS).
function assertKnownAttributes(kind, body) {
  if (!STRICT_ATTRS || !body || typeof body !== "object") return;
  const Resource = kind === "Users" ? SCIMMY.Resources.User : SCIMMY.Resources.Group;
  const bad = unknownAttributes(body, allowedNames(Resource.schema.definition));
  if (bad.length) {
    throw scimError(400, "invalidSyntax", `unknown attribute(s) for ${kind}: ${bad.join(", ")} (scim-server.js SCIM_STRICT_ATTRS)`);
  }
}

function authenticate(req) {
  if (!TOKEN && !BASIC_USER && !OAUTH_CLIENT_ID) return "anonymous";
  const h = req.header("Authorization") || "";
  if (TOKEN && h === `Bearer ${TOKEN}`) return "bearer-client";
  if (OAUTH_CLIENT_ID && h.startsWith("Bearer ")) {
    const t = oauth.tokens.get(h.slice(7));
    if (t && t.expires > Date.now()) return "oauth-client";
    if (t) throw new Error("Authorization failed: access token expired");
  }
  if (BASIC_USER && h.startsWith("Basic ")) {
    const [u, ...p] = Buffer.from(h.slice(6), "base64").toString("utf8").split(":");
    if (u === BASIC_USER && p.join(":") === BASIC_PASSWORD) return u;
  }
  throw new Error("Authorization failed");
}

const app = express();
app.disable("x-powered-by");

// ---- /_control (test helper API, not SCIM) ---------------------------------------------------
const control = express.Router();
control.use(express.json());
control.get("/health", (req, res) =>
  res.json({ ok: true, pid: process.pid, users: store.Users.size, groups: store.Groups.size, requests: requestLog.length,
    bulkChecks: true }));
control.get("/requests", (req, res) =>
  res.json(requestLog.filter((e) => req.query.userAgent === undefined || e.userAgent === req.query.userAgent)));
control.delete("/requests", (req, res) => { requestLog = []; res.status(204).end(); });
control.get("/faults", (req, res) => res.json(faults));
control.post("/faults", (req, res) => {
  const f = { status: 503, count: 1, ...req.body };
  faults.push(f);
  res.status(201).json(f);
});
control.delete("/faults", (req, res) => { faults = []; res.status(204).end(); });
control.get("/strict", (req, res) => res.json(Object.fromEntries(strict)));
control.post("/strict", (req, res) => {
  const scimType = req.body?.scimType ?? "invalidPath";
  if (typeof scimType !== "string") return res.status(400).json({ error: "scimType must be a string" });
  if (!scimErrorRenders(400, scimType)) return res.status(400).json({ error: `scimType ${JSON.stringify(scimType)} cannot go with a 400 (RFC 7644 §3.12)` });
  const s = { rejectFilteredPaths: req.body?.rejectFilteredPaths === true, scimType };
  strict.set(String(req.body?.userAgent ?? ""), s);
  res.status(201).json(s);
});
control.delete("/strict", (req, res) => {
  if (req.query.userAgent !== undefined) strict.delete(String(req.query.userAgent));
  else strict.clear();
  res.status(204).end();
});
control.get("/passwords", (req, res) => res.json([...passwords.values()]
  .filter((p) => req.query.userAgent === undefined || p.userAgent === req.query.userAgent)
  .map(({ id, userName, password, method, time }) => ({ id, userName, password, method, time }))));
control.post("/passwords/refuse", (req, res) => {
  const r = { status: Number(req.body?.status ?? 400), scimType: String(req.body?.scimType ?? "mutability") };
  if (!scimErrorRenders(r.status, r.scimType)) {
    return res.status(400).json({ error: `status ${r.status} with scimType ${JSON.stringify(r.scimType)} is not a SCIM error (RFC 7644 §3.12)` });
  }
  refusePasswords.set(String(req.body?.userAgent ?? ""), r);
  res.status(201).json(r);
});
control.delete("/passwords/refuse", (req, res) => {
  if (req.query.userAgent !== undefined) refusePasswords.delete(String(req.query.userAgent));
  else refusePasswords.clear();
  res.status(204).end();
});
control.post("/reset", (req, res) => {
  store.Users.clear(); store.Groups.clear(); userNameIndex.clear(); requestLog = []; faults = []; seq = 0;
  strict.clear(); passwords.clear(); refusePasswords.clear();
  oauth.tokens.clear(); oauth.ttlByUserAgent.clear(); oauth.requests = [];
  res.status(204).end();
});
control.get("/oauth", (req, res) => res.json({
  ttl: oauth.ttl,
  ttlByUserAgent: Object.fromEntries(oauth.ttlByUserAgent),
  tokenRequests: oauth.requests.filter((r) => req.query.userAgent === undefined || r.userAgent === req.query.userAgent),
}));
control.post("/oauth/ttl", (req, res) => {
  const ttl = Number(req.body?.ttl);
  if (!(ttl > 0)) return res.status(400).json({ error: "ttl must be a positive number of seconds" });
  if (req.body.userAgent !== undefined) oauth.ttlByUserAgent.set(String(req.body.userAgent), ttl);
  else oauth.ttl = ttl;
  res.status(204).end();
});
control.post("/oauth/revoke", (req, res) => {
  let n = 0;
  for (const [tok, t] of oauth.tokens) {
    if (req.body?.userAgent === undefined || t.userAgent === req.body.userAgent) { oauth.tokens.delete(tok); n++; }
  }
  res.json({ revoked: n });
});
control.get("/dump", (req, res) => res.json({ Users: [...store.Users.values()], Groups: [...store.Groups.values()] }));
app.use("/_control", control);

// ---- OAuth2 token endpoint (RFC 6749 §4.4 client credentials), test-only -----------------------
// Client authentication: HTTP Basic with form-urlencoded id and secret (client_secret_basic,
// RFC 6749 §2.3.1) or client_id/client_secret in the body (client_secret_post).
function oauthError(res, status, error, description) {
  if (status === 401) res.setHeader("WWW-Authenticate", 'Basic realm="oauth"');
  res.status(status).set("Cache-Control", "no-store").json({ error, error_description: description });
}
app.post("/oauth/token", express.urlencoded({ extended: false }), (req, res) => {
  const userAgent = req.header("User-Agent") || "";
  const entry = { time: now(), userAgent, ok: false };
  oauth.requests.push(entry);
  if (oauth.requests.length > LOG_LIMIT) oauth.requests.splice(0, oauth.requests.length - LOG_LIMIT);
  if (!OAUTH_CLIENT_ID) return oauthError(res, 404, "invalid_request", "token endpoint not enabled (SCIM_OAUTH_CLIENT_ID)");
  let id = req.body?.client_id, secret = req.body?.client_secret;
  const h = req.header("Authorization") || "";
  if (h.startsWith("Basic ")) {
    const raw = Buffer.from(h.slice(6), "base64").toString("utf8");
    const i = raw.indexOf(":");
    try {
      id = decodeURIComponent(raw.slice(0, i).replace(/\+/g, " "));
      secret = decodeURIComponent(raw.slice(i + 1).replace(/\+/g, " "));
    } catch { id = undefined; }
  }
  if (id !== OAUTH_CLIENT_ID || secret !== OAUTH_CLIENT_SECRET) {
    return oauthError(res, 401, "invalid_client", "client authentication failed");
  }
  if (req.body?.grant_type !== "client_credentials") {
    return oauthError(res, 400, "unsupported_grant_type", "only client_credentials is supported");
  }
  const ttl = oauth.ttlByUserAgent.get(userAgent) ?? oauth.ttl;
  const token = crypto.randomBytes(24).toString("base64url");
  oauth.tokens.set(token, { expires: Date.now() + ttl * 1000, userAgent });
  for (const [tok, t] of oauth.tokens) if (t.expires < Date.now() - 60000) oauth.tokens.delete(tok);
  Object.assign(entry, { ok: true, ttl });
  res.set("Cache-Control", "no-store").json({
    access_token: token, token_type: "Bearer", expires_in: ttl,
    ...(req.body?.scope ? { scope: req.body.scope } : {}),
  });
});

// ---- request log + fault injection in front of the SCIM routers ------------------------------
app.use(BASE, express.json({ type: ["application/scim+json", "application/json"], limit: "10mb" }));
app.use(BASE, async (req, res, next) => {
  const entry = {
    seq: ++seq, time: now(), method: req.method, path: req.path, query: req.query,
    userAgent: req.header("User-Agent") || "", scheme: req.socket.encrypted ? "https" : "http",
    ...(LOG_BODIES && req.body && Object.keys(req.body).length ? { body: withholdPasswords(req.body) } : {}),
  };
  if (req.method === "POST" && /^\/Bulk\/?$/.test(req.path)) {
    // One entry per HTTP request, as for every other request (request counts stay counts of
    // what went over the wire); its body is the BulkRequest (passwords withheld as anywhere),
    // and operations tells each operation's outcome, as its own request's entry would.
    const send = res.send.bind(res);
    res.send = (answer) => {
      const ops = bulkOutcomes(req.body, answer);
      if (ops) entry.operations = ops;
      return send(answer);
    };
  }
  const t0 = process.hrtime.bigint();
  res.on("finish", () => {
    entry.status = res.statusCode;
    entry.ms = Number(process.hrtime.bigint() - t0) / 1e6;
    requestLog.push(entry);
    if (requestLog.length > LOG_LIMIT) requestLog.splice(0, requestLog.length - LOG_LIMIT);
  });
  const f = faults.find((x) => x.count > 0 && (!x.method || x.method.toUpperCase() === req.method)
    && (!x.path || req.path.startsWith(x.path))
    && (x.userAgent === undefined || x.userAgent === entry.userAgent));
  if (f) {
    f.count--;
    entry.fault = true;
    if (f.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
    if (f.drop) {
      entry.status = 0;
      requestLog.push(entry);
      return req.socket.destroy();
    }
    if (f.status) {
      if (f.retryAfter !== undefined) res.setHeader("Retry-After", String(f.retryAfter));
      if (f.body !== undefined || f.contentType !== undefined) {
        return res.status(f.status).type(f.contentType || "text/plain").send(String(f.body ?? ""));
      }
      return res.status(f.status).type("application/scim+json").send(JSON.stringify({
        schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
        status: String(f.status), detail: "injected fault (scim-server.js /_control/faults)",
      }));
    }
  }
  next();
});

// bulkOutcomes lists, for the request log, each operation of a BulkRequest with its outcome from
// the BulkResponse (matched by bulkId, else by position): [{method, path, bulkId, status,
// scimType, location}]. undefined when the answer is not a BulkResponse.
function bulkOutcomes(request, answer) {
  let doc;
  try { doc = typeof answer === "string" ? JSON.parse(answer) : plain(answer); } catch { return undefined; }
  if (!Array.isArray(doc?.Operations)) return undefined;
  const byBulkId = new Map(doc.Operations.filter((r) => typeof r?.bulkId === "string").map((r) => [r.bulkId, r]));
  const ops = Array.isArray(request?.Operations) ? request.Operations : [];
  return ops.map((op, i) => {
    const r = typeof op?.bulkId === "string" ? byBulkId.get(op.bulkId) : doc.Operations[i];
    return {
      method: op?.method, path: op?.path,
      ...(typeof op?.bulkId === "string" ? { bulkId: op.bulkId } : {}),
      status: Number(r?.status) || 0,
      ...(r?.response?.scimType ? { scimType: r.response.scimType } : {}),
      ...(r?.location ? { location: r.location } : {}),
    };
  });
}

// ---- password sync (test-only) -----------------------------------------------------------------
const USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User";
const isPasswordKey = (k) => typeof k === "string" && (k.toLowerCase() === "password" || k.toLowerCase() === `${USER_URN.toLowerCase()}:password`);

// passwordIn returns the password a request body sets, or undefined: a resource's password (POST,
// PUT), or a PATCH operation's (path password, or no path and a value object holding password).
function passwordIn(method, body) {
  if (!body || typeof body !== "object") return undefined;
  if (method === "POST" || method === "PUT") {
    const k = Object.keys(body).find(isPasswordKey);
    return k !== undefined && typeof body[k] === "string" ? body[k] : undefined;
  }
  if (method !== "PATCH" || !Array.isArray(body.Operations)) return undefined;
  let pw;
  for (const op of body.Operations) {
    const o = String(op?.op ?? "").toLowerCase();
    if (o !== "replace" && o !== "add") continue;
    if (isPasswordKey(op.path) && typeof op.value === "string") pw = op.value;
    else if (op.path === undefined && op.value && typeof op.value === "object") {
      const k = Object.keys(op.value).find(isPasswordKey);
      if (k !== undefined && typeof op.value[k] === "string") pw = op.value[k];
    }
  }
  return pw;
}

// withholdPasswords returns a copy of a request body for the request log, every password value
// replaced, so that the log never holds one.
function withholdPasswords(v, hide = false) {
  if (Array.isArray(v)) return v.map((x) => withholdPasswords(x, hide));
  if (v && typeof v === "object") {
    const out = {};
    const pathIsPassword = isPasswordKey(v.path);
    for (const [k, x] of Object.entries(v)) {
      out[k] = withholdPasswords(x, hide || isPasswordKey(k) || (pathIsPassword && k === "value"));
    }
    return out;
  }
  return hide && typeof v === "string" ? "(withheld)" : v;
}

// assertPasswordTaken refuses a write that carries a password when the request's User-Agent was
// told to (POST /_control/passwords/refuse), before anything is applied.
function assertPasswordTaken(ctx) {
  const refuse = refusePasswords.get(ctx?.userAgent ?? "") ?? refusePasswords.get("");
  if (refuse) {
    throw scimError(refuse.status, refuse.scimType || null,
      "password writes are not accepted (scim-server.js /_control/passwords/refuse)");
  }
}

// recordPassword keeps the password a write carried once the write succeeded (GET /_control/passwords).
function recordPassword(id, password, method, ctx) {
  if (id === undefined) return;
  const userName = store.Users.get(id)?.userName;
  passwords.set(id, { id, userName, password, method, time: now(), userAgent: ctx?.userAgent ?? "" });
}

// Strict mode: refuse PATCH paths with a value filter (a valuePath, RFC 7644 §3.5.2 "path" ABNF:
// the only place a "[" can appear), as some real services do, before SCIMMY applies anything.
function assertPatchPaths(message, ctx) {
  const s = strict.get(ctx?.userAgent ?? "") ?? strict.get("");
  if (!s?.rejectFilteredPaths) return;
  const ops = Array.isArray(message?.Operations) ? message.Operations : [];
  if (ops.some((op) => typeof op?.path === "string" && op.path.includes("["))) {
    throw scimError(400, s.scimType || null,
      "value filters in PATCH paths are not supported (scim-server.js strict mode: rejectFilteredPaths)");
  }
}

// scimErrorRenders reports whether SCIMMY can send status with scimType as a SCIM error (RFC 7644
// §3.12 pairs them; SCIMMY refuses any other pair with a TypeError, which would turn a refusal
// into a 500). /_control refuses settings it could not answer with.
function scimErrorRenders(status, scimType) {
  try {
    new SCIMMY.Messages.Error({ status, scimType: scimType || undefined, detail: "x" });
    return true;
  } catch {
    return false;
  }
}

// RFC 7644 §3.1: a 201 carries the new resource's URI in Location; scimmy-routers does not set
// it, so copy meta.location into the header (and the version into ETag) on the way out.
app.use(BASE, (req, res, next) => {
  const send = res.send.bind(res);
  res.send = (body) => {
    try {
      const doc = typeof body === "string" ? JSON.parse(body) : body;
      if (doc?.meta?.location && res.statusCode === 201) res.setHeader("Location", doc.meta.location);
      if (doc?.meta?.version && !Array.isArray(doc?.Resources)) res.setHeader("ETag", doc.meta.version);
    } catch { /* not JSON */ }
    return send(body);
  };
  next();
});

// Express 5 parses req.query anew on every read (a getter), so scimmy-routers' cast of startIndex
// and count to numbers was lost and SCIMMY, which takes only integers, ignored both: every page
// was the first 20. Parse once and keep the object, so that the cast sticks.
// keepQuery also caps the count of the root /.search, which SCIMMY pages without a cap.
app.use(BASE, function keepQuery(req, res, next) {
  Object.defineProperty(req, "query", { value: req.query, writable: true, configurable: true, enumerable: true });
  if (req.method === "POST" && /^\/\.search\/?$/.test(req.path) && typeof req.body?.count === "number") {
    req.body.count = Math.min(req.body.count, maxResults());
  }
  next();
});

app.use(BASE, new SCIMMYRouters({
  type: TOKEN || OAUTH_CLIENT_ID || !BASIC_USER ? "bearer" : "basic",
  docUri: "https://example.invalid/scimsync-test-harness",
  handler: authenticate,
  // the root /.search reads every resource type whole and pages the merged list itself
  // userAgent: for the checks and captures of guardWrites, which see a Bulk request's operations
  // one by one with the context of the request that carried them
  context: (req) => ({
    rootSearch: req.originalUrl.split("?")[0].replace(/\/$/, "") === `${BASE}/.search`,
    userAgent: req.header("User-Agent") || "",
  }),
  // absolute meta.location values (scimmy-routers accepts http:// and https:// here)
  baseUri: (req) => `${req.socket.encrypted ? "https" : "http"}://${HOST}:${req.socket.localPort}`,
}));

// Bulk (RFC 7644 §3.7): what is advertised is what POST /Bulk enforces (scimmy-routers reads
// SCIMMY.Config on each request), set from SCIM_BULK* at start and by POST /_control/bulk.
function setBulk(b) {
  const cur = SCIMMY.Config.get().bulk;
  const next = {
    supported: b.supported ?? cur.supported,
    maxOperations: Number(b.maxOperations ?? cur.maxOperations),
    maxPayloadSize: Number(b.maxPayloadSize ?? cur.maxPayloadSize),
  };
  if (!(next.maxOperations >= 0) || !(next.maxPayloadSize >= 0)) throw new Error("bulk limits must be numbers, 0 or more");
  // SCIMMY.Config.set with an object turns supported on; a boolean alone sets it.
  SCIMMY.Config.set({ bulk: { maxOperations: next.maxOperations, maxPayloadSize: next.maxPayloadSize } });
  SCIMMY.Config.set({ bulk: next.supported === true });
  return SCIMMY.Config.get().bulk;
}
setBulk({
  supported: process.env.SCIM_BULK !== "0",
  ...(process.env.SCIM_BULK_MAX_OPERATIONS ? { maxOperations: process.env.SCIM_BULK_MAX_OPERATIONS } : {}),
  ...(process.env.SCIM_BULK_MAX_PAYLOAD ? { maxPayloadSize: process.env.SCIM_BULK_MAX_PAYLOAD } : {}),
});
control.get("/bulk", (req, res) => res.json(SCIMMY.Config.get().bulk));
control.post("/bulk", (req, res) => {
  try { res.status(201).json(setBulk(req.body ?? {})); } catch (e) { res.status(400).json({ error: String(e.message) }); }
});

// SCIMMY routers forward >= 500 errors after answering; just log them.
app.use((err, req, res, next) => {
  console.error(`[scim-server] ${req.method} ${req.originalUrl}: ${err?.stack || err}`);
  if (!res.headersSent) res.status(500).json({ detail: String(err) });
});

const servers = [];
function listen(server, port, what) {
  server.keepAliveTimeout = 65000;
  server.listen(port, HOST, () => {
    console.log(`[scim-server] listening on ${what}://${HOST}:${port}${BASE} (pid ${process.pid})`);
  });
  server.on("error", (err) => { console.error(`[scim-server] ${what} port ${port}: ${err}`); process.exit(1); });
  servers.push(server);
}
listen(http.createServer(app), PORT, "http");
if (HTTPS_PORT || MTLS_PORT) {
  const cert = fs.readFileSync(process.env.SCIM_TLS_CERT);
  const key = fs.readFileSync(process.env.SCIM_TLS_KEY);
  if (HTTPS_PORT) listen(https.createServer({ cert, key }, app), HTTPS_PORT, "https");
  if (MTLS_PORT) {
    const ca = fs.readFileSync(process.env.SCIM_TLS_CA);
    listen(https.createServer({ cert, key, ca, requestCert: true, rejectUnauthorized: true }, app), MTLS_PORT, "https");
  }
}
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    for (const s of servers) { s.close(); s.closeAllConnections?.(); }
    process.exit(0);
  });
}
