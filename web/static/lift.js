// lift.js — lift's browser SDK (docs/sdk.md). An ES module with no dependencies and no
// build step, served by lift at /static/lift.js.
//
//   import { init } from "https://lift.example.com/static/lift.js";
//   const lift = init({ endpoint: "https://lift.example.com", clientKey: "lift_ck_…" });
//   const hero = await lift.decide();          // cached; refreshed in the background
//   lift.value("hero-banner");                 // logs the exposure when rendered
//   lift.track("add_to_cart", { properties: { sku: "B-12" } });
//   const recs = await lift.recommend("similar", { n: 4 }); // then recs.shown()
//
// Delivery is at-least-once: every event gets its event_id here, stays in localStorage
// until lift answered 202, and is sent with navigator.sendBeacon when the page is hidden
// or closed; lift stores an event_id once.
//
// Whenever lift has not answered (not yet, an error, a refused key, lift down, an answer
// later than renderTimeout) a [data-lift] element shows its data-lift-default; with the
// anti-flicker CSS of docs/sdk.md nothing else is ever seen meanwhile.

const COOKIE = "lift_id";
const PREFIX = "lift:";
const BEACON_BYTES = 60000; // browsers allow 64 KiB of beacons in flight per page
const MAX_QUEUE = 1000; // events kept while lift is unreachable; older ones are dropped
const MAX_BACKOFF = 60000; // ms between event flushes while lift keeps failing
const LOADING_CLASS = "lift-loading"; // on <html> while [data-lift] waits (docs/sdk.md)
// RFC 3339 with a time zone; a space may stand for the T.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

export const version = "1";

/**
 * Starts the SDK. Options:
 *   endpoint        lift's base URL (default: the page's origin)
 *   clientKey       a client key (required)
 *   userId          a logged-in id (same as calling identify)
 *   attributes      targeting attributes sent with every decide
 *   consent         {analytics: bool, personalization: bool}, passed through to lift
 *   keys            the experiment and flag keys to decide (default: all)
 *   cacheTtl        ms a cached decision is fresh (default 60000)
 *   refreshInterval ms between background refreshes while the page is visible (0: off)
 *   flushInterval   ms between event flushes (default 2000)
 *   batchSize       flush as soon as this many events wait (default 50)
 *   autoRender      show data-lift elements' variants and log their exposures (default true)
 *   renderTimeout   ms data-lift elements wait for lift's first answer before showing
 *                   their default; an answer later than that is kept for the next page
 *                   (default 1000)
 *   cookieDomain    domain of the anonymous id cookie (default: the page's host)
 *   storage         a Storage for the cache, queue and sticky buckets (default localStorage)
 */
export function init(options) {
	return new Lift(options);
}

export class Lift {
	constructor(o = {}) {
		if (!o.clientKey) throw new Error("lift: clientKey is required");
		this.endpoint = (o.endpoint || location.origin).replace(/\/+$/, "");
		this.clientKey = o.clientKey;
		this.attributes = { ...(o.attributes || {}) };
		this.consent = o.consent;
		this.keys = o.keys;
		this.cacheTtl = o.cacheTtl ?? 60000;
		this.flushInterval = o.flushInterval ?? 2000;
		this.renderTimeout = o.renderTimeout ?? 1000;
		this.retryAt = 0; // no flush before this time (ms) after failures
		this.backoff = 0;
		this.refused = null; // why lift refused the key (401/403): nothing more is sent
		this.batchSize = o.batchSize ?? 50;
		this.cookieDomain = o.cookieDomain;
		this.store = o.storage || safeLocalStorage();
		this.listeners = new Set();
		this.decisions = null;
		this.pending = null;
		this.clockSkew = 0; // server time − local time, from the Date header
		this.inFlight = new Set(); // event_ids of a flush awaiting its answer
		this.anonymousId = this.#anonymousId();
		this.userId = this.#load("user") || null;
		this.#loadCached();
		if (o.userId) this.identify(o.userId);
		this.flushTimer = setInterval(() => Date.now() >= this.retryAt && this.flush(), this.flushInterval);
		if (o.refreshInterval > 0) {
			this.refreshTimer = setInterval(() => {
				if (document.visibilityState === "visible" && !this.refused) this.refresh().catch(() => {});
			}, o.refreshInterval);
		}
		// pagehide covers closing and navigating; visibilitychange covers mobile
		// browsers, which may kill a hidden page without a pagehide.
		this.onHide = () => this.#beacon();
		this.onVisibility = () => document.visibilityState === "hidden" && this.#beacon();
		addEventListener("pagehide", this.onHide);
		document.addEventListener("visibilitychange", this.onVisibility);
		this.autoRender = o.autoRender ?? true;
		if (this.autoRender && typeof IntersectionObserver !== "undefined") {
			this.observer = new IntersectionObserver((entries) => this.#seen(entries), { threshold: 0.5 });
		}
		// shown: [data-lift] elements show a decision or their default. fellBack: they
		// show defaults because lift did not answer in time, so an answer to a request
		// made before then is not rendered (it would replace what the visitor sees).
		this.shown = false;
		this.fellBack = false;
		if (this.autoRender) {
			if (this.decisions) this.#whenReady(() => this.render());
			else this.renderTimer = setTimeout(() => this.#fallBack(), this.renderTimeout);
		}
		queueMicrotask(() => this.flush()); // what a closed page left behind
	}

	/** The id decisions and events are made for: the logged-in id, else the anonymous one. */
	get id() {
		return this.userId || this.anonymousId;
	}

	/**
	 * Decisions for the current user: the cached ones while fresh, else from lift.
	 * A stale cache is returned at once and refreshed in the background. Resolves to
	 * {"<key>": {variant, value, reason, experiment, exposure?}}; when lift cannot be
	 * asked it resolves to {} (so value(key, fallback) gives the fallbacks) and says
	 * why once on the console: lift being down must not break the page's script.
	 */
	async decide() {
		if (this.decisions && Date.now() - this.decidedAt < this.cacheTtl) return this.decisions;
		if (this.decisions) {
			this.refresh().catch(() => {});
			return this.decisions;
		}
		return this.#ask();
	}

	// #ask refreshes, resolving to the decisions kept (or {}) when lift cannot answer.
	#ask() {
		return this.refresh().catch((err) => {
			if (!this.refused && !this.warned) {
				this.warned = true;
				console.warn(String(err?.message || err).replace(/^(lift: )?/, "lift: ") + " — showing defaults");
			}
			return this.decisions || {};
		});
	}

	/**
	 * Asks lift again, bypassing the cache; listeners of "change" are told. Rejects
	 * when lift does not answer (decide() and the calls below resolve instead).
	 */
	refresh() {
		if (this.refused) return Promise.reject(new Error(this.refused));
		if (this.pending) return this.pending;
		const body = { user_id: this.id, attributes: this.attributes, track: false };
		if (this.keys) body.keys = this.keys;
		if (this.consent) body.consent = this.consent;
		const sticky = this.#load("sticky:" + this.id);
		if (sticky) body.sticky = sticky;
		const forId = this.id;
		const askedBeforeFallback = !this.fellBack;
		this.pending = this.#post("/v1/decide", body, { Authorization: "Bearer " + this.clientKey })
			.then(async (res) => {
				if (res.status === 401 || res.status === 403) throw new Error(this.#refuse(res.status, await res.text()));
				if (!res.ok) throw new Error("lift: /v1/decide answered " + res.status + ": " + (await res.text()));
				const date = Date.parse(res.headers.get("Date"));
				if (date) this.clockSkew = date - Date.now();
				const out = await res.json();
				if (forId !== this.id) return this.refresh(); // identify() ran meanwhile
				if (out.sticky) this.#save("sticky:" + forId, out.sticky);
				this.#setDecisions(out.decisions, Date.now(), !(askedBeforeFallback && this.fellBack));
				return this.decisions;
			})
			.catch((err) => {
				this.#fallBack(); // nothing to show but the defaults
				throw err;
			})
			.finally(() => (this.pending = null));
		return this.pending;
	}

	/** The decision for key from the cache (undefined before the first decide). Logs the exposure. */
	decision(key) {
		const d = this.decisions?.[key];
		if (d) this.expose(key);
		return d;
	}

	/** The value served for key, or fallback; logs the exposure, as the value is about to be rendered. */
	value(key, fallback) {
		const d = this.decision(key);
		return d === undefined || d.value === null ? fallback : d.value;
	}

	/** The variant key served for key; logs the exposure. */
	variant(key) {
		return this.decision(key)?.variant;
	}

	/**
	 * Logs the exposure of an experiment decision, once per user and variant in this
	 * browser. Called
	 * by value(), variant() and decision(), and by autoRender when a data-lift element
	 * is on screen; call it yourself when you render from a decision read otherwise.
	 */
	expose(key) {
		const x = this.decisions?.[key]?.exposure;
		if (x) this.#logExposure(x); // else a flag, or a user outside the experiment
	}

	/**
	 * Records an event: type is a built-in type (page_view, product_view, click,
	 * add_to_cart, remove_from_cart, purchase) or a declared custom one. Options:
	 * properties, value (required for purchase), timestamp (a Date, an RFC 3339 string
	 * with a time zone such as "2026-12-07T08:00:00Z", or epoch milliseconds; default
	 * now; anything else throws a TypeError). Returns the event_id.
	 */
	track(type, { properties, value, timestamp } = {}) {
		return this.#enqueue(type, { properties, value, timestamp: toMillis(timestamp) });
	}

	/**
	 * Switches to a logged-in id. Merging (docs/sdk.md): events already recorded stay
	 * with the anonymous id; from now on decisions and events use userId; the anonymous
	 * visitor's sticky bandit arms are carried over where the user has none; a $identify
	 * event links the two ids for analysts. Decisions are refreshed.
	 */
	identify(userId) {
		if (!userId || userId === this.userId) return Promise.resolve(this.decisions);
		const from = this.id;
		const carried = { ...(this.#load("sticky:" + from) || {}), ...(this.#load("sticky:" + userId) || {}) };
		if (Object.keys(carried).length) this.#save("sticky:" + userId, carried);
		this.userId = userId;
		this.#save("user", userId);
		this.#enqueue("$identify", { properties: { anonymous_id: this.anonymousId } });
		this.decisions = null;
		return this.#ask();
	}

	/** Logs out: forgets the logged-in id and starts a new anonymous visitor. */
	reset() {
		this.flush();
		this.userId = null;
		this.#remove("user");
		this.anonymousId = this.#anonymousId(true);
		this.decisions = null;
		return this.#ask();
	}

	/**
	 * Recommended items for the current user from a recommender
	 * (docs/recommendations.md), scored from what they touched last, so a product
	 * viewed a moment ago counts (flush() the view first). Options: n (default 10),
	 * exclude (item ids), experiment (an experiment or bandit whose variants choose
	 * the recommender or strategy), strategy ("similar" or "popular"). Resolves to
	 * {items: [{item, score, source}], model_version, strategy, recommendation_id,
	 * experiment?, variant?, shown()}: call shown() once the items are on screen, which
	 * logs the impression (a $recommendation event) and the experiment's exposure.
	 * Send recommendation_id with the events of a click on an item, for attribution.
	 */
	async recommend(recommender, { n, exclude, experiment, strategy } = {}) {
		const body = { user_id: this.id, attributes: this.attributes, track: false };
		if (recommender) body.recommender = recommender;
		if (n) body.n = n;
		if (exclude) body.exclude = exclude;
		if (experiment) body.experiment = experiment;
		if (strategy) body.strategy = strategy;
		if (this.consent) body.consent = this.consent;
		const res = await this.#post("/v1/recommend", body, { Authorization: "Bearer " + this.clientKey });
		if (!res.ok) throw new Error("lift: /v1/recommend answered " + res.status + ": " + (await res.text()));
		const out = await res.json();
		let logged = false;
		out.shown = () => {
			if (logged) return;
			logged = true;
			if (out.exposure) this.#logExposure(out.exposure);
			if (out.impression && out.items.length) this.#enqueue("$recommendation", { properties: out.impression });
		};
		return out;
	}

	/** Replaces the targeting attributes and refreshes the decisions. */
	setAttributes(attributes) {
		this.attributes = { ...attributes };
		this.decisions = null;
		return this.#ask();
	}

	/**
	 * Sets the user's consent, {analytics, personalization}; it is sent with every
	 * decide and event request (lift applies it, see docs/privacy.md). Without any
	 * consent the anonymous id lives only as long as the page.
	 */
	setConsent(consent) {
		this.consent = { analytics: !!consent.analytics, personalization: !!consent.personalization };
		if (!this.#mayPersist()) {
			document.cookie = COOKIE + "=; Max-Age=0; Path=/" + this.#cookieDomain();
		} else {
			this.#anonymousId(); // persists the id now that it may
		}
		this.decisions = null;
		return this.#ask();
	}

	/** Calls fn(decisions) whenever new decisions arrive; returns an unsubscribe function. */
	on(event, fn) {
		if (event !== "change") throw new Error("lift: unknown event " + event);
		this.listeners.add(fn);
		return () => this.listeners.delete(fn);
	}

	/**
	 * Shows, inside every [data-lift="<key>"] under root, the child whose
	 * data-lift-variant is the served variant (or data-lift-default when none matches,
	 * or before any decision) and hides the others; the exposure is logged once the
	 * element is half visible. Marks each element data-lift-served and takes the
	 * lift-loading class off <html> (the anti-flicker CSS of docs/sdk.md).
	 */
	render(root = document) {
		this.#paint(root, this.decisions);
	}

	#paint(root, decisions) {
		this.shown = true;
		clearTimeout(this.renderTimer);
		for (const el of root.querySelectorAll("[data-lift]")) {
			const key = el.dataset.lift;
			const d = decisions?.[key];
			const options = [...el.querySelectorAll(":scope > [data-lift-variant], :scope > [data-lift-default]")];
			const shown =
				options.find((v) => d && v.dataset.liftVariant === d.variant) ||
				options.find((v) => v.hasAttribute("data-lift-default"));
			for (const v of options) v.hidden = v !== shown;
			el.dataset.liftServed = d ? d.variant : "";
			if (!d?.exposure) continue;
			if (this.observer) this.observer.observe(el);
			else this.expose(key);
		}
		document.documentElement.classList.remove(LOADING_CLASS);
	}

	// #fallBack shows every [data-lift] element's default, unless something is shown
	// already (a decision on screen stays there when a later refresh fails).
	#fallBack() {
		if (!this.autoRender || this.shown) return;
		this.fellBack = true;
		this.#whenReady(() => this.#paint(document, null));
	}

	#whenReady(fn) {
		if (typeof document === "undefined") return;
		if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn, { once: true });
		else fn();
	}

	// #refuse stops all traffic to lift after it refused the client key (401, or 403
	// for an origin the key does not allow): asking again would be refused again. It
	// says so once on the console and returns the message.
	#refuse(status, body) {
		if (!this.refused) {
			let why = body;
			try {
				why = JSON.parse(body).error || body;
			} catch {
				// not JSON: keep the text
			}
			this.refused = "lift: " + status + " " + why + " — lift.js stops sending for this page: check clientKey" +
				" (a client key, lift_ck_…); decisions show their defaults and events wait in localStorage.";
			console.error(this.refused);
			clearInterval(this.flushTimer);
			clearInterval(this.refreshTimer);
		}
		return this.refused;
	}

	/** Sends the queued events now; resolves when lift answered (or the attempt failed). */
	async flush() {
		if (this.refused) return;
		const queue = this.#queue().filter((e) => !this.inFlight.has(e.event_id));
		if (!queue.length || this.flushing) return;
		this.flushing = true;
		const batch = queue.slice(0, 100);
		for (const e of batch) this.inFlight.add(e.event_id);
		try {
			// A CORS "simple" request (text/plain, key in the body) needs no preflight,
			// and keepalive lets it finish if the page closes meanwhile.
			const res = await this.#post("/v1/events", this.#eventsBody(batch), {}, true);
			if (res.status === 202 || res.status === 400) {
				// A 400 lists the rejections too when every event was invalid.
				const out = await res.json().catch(() => ({}));
				for (const r of out.rejected || []) console.warn("lift: event rejected:", r.error, batch[r.index]);
				this.#dropFromQueue(new Set(batch.map((e) => e.event_id)));
				this.backoff = 0;
			} else if (res.status === 401 || res.status === 403) {
				this.#refuse(res.status, await res.text()); // the events stay queued
			} else {
				// 413/429/503: the events stay queued; wait longer after each failure,
				// or as long as Retry-After says.
				this.#delay(Number(res.headers.get("Retry-After")) * 1000);
			}
		} catch {
			this.#delay(0); // offline: keep them
		} finally {
			for (const e of batch) this.inFlight.delete(e.event_id);
			this.flushing = false;
		}
	}

	// #delay postpones the next timed flush: twice as long after each failure (from
	// flushInterval up to a minute), or what the server asked for.
	#delay(ms) {
		this.backoff = Math.min(Math.max(this.backoff * 2, this.flushInterval), MAX_BACKOFF);
		this.retryAt = Date.now() + Math.max(ms || 0, this.backoff);
	}

	/** The OpenFeature evaluation context for this user, for @openfeature/ofrep-web-provider. */
	openFeatureContext() {
		return { targetingKey: this.id, ...this.attributes };
	}

	/**
	 * An OpenFeature hook that logs the exposure of experiment flags evaluated through
	 * OFREP (lift's OFREP answers carry it in the flag metadata).
	 */
	openFeatureHook() {
		return {
			after: (hookContext, details) => {
				const m = details?.flagMetadata || {};
				if (!m.experimentKey) return;
				const x = { experiment: m.experimentKey, variant: details.variant, assignment_probability: m.assignmentProbability };
				if (m.segment) x.segment = m.segment;
				this.#logExposure(x);
			},
		};
	}

	/** Stops timers and listeners after a last beacon. */
	close() {
		this.#beacon();
		clearInterval(this.flushTimer);
		clearInterval(this.refreshTimer);
		removeEventListener("pagehide", this.onHide);
		document.removeEventListener("visibilitychange", this.onVisibility);
		this.observer?.disconnect();
	}

	// ---- internals -----------------------------------------------------------------

	// #setDecisions keeps new decisions; show is false for the answer to a request made
	// before [data-lift] fell back to its defaults, which is only cached for later.
	#setDecisions(decisions, at, show = true) {
		this.decisions = decisions;
		this.decidedAt = at;
		this.#save("decisions", { id: this.id, attrs: JSON.stringify(this.attributes), at, decisions });
		if (this.autoRender && show) this.#whenReady(() => this.render());
		for (const fn of this.listeners) {
			try {
				fn(decisions);
			} catch (err) {
				console.error("lift: change listener failed", err);
			}
		}
	}

	// #logExposure records an exposure unless this user was already exposed to the same
	// variant in this browser: results count a user from their first exposure, so
	// repeating it on every page view would only fill storage.
	#logExposure(x) {
		const name = "exposed:" + this.id;
		const seen = this.#load(name) || {};
		if (seen[x.experiment] === x.variant) return;
		seen[x.experiment] = x.variant;
		this.#save(name, seen);
		this.#enqueue("$exposure", { properties: x });
	}

	#loadCached() {
		const c = this.#load("decisions");
		if (c && c.id === this.id && c.attrs === JSON.stringify(this.attributes)) {
			this.decisions = c.decisions;
			this.decidedAt = c.at;
		}
	}

	#seen(entries) {
		for (const e of entries) {
			if (!e.isIntersecting) continue;
			this.observer.unobserve(e.target);
			this.expose(e.target.dataset.lift);
		}
	}

	#enqueue(type, { properties, value, timestamp }) {
		const e = {
			event_id: uuid(),
			type,
			user_id: this.id,
			timestamp: new Date((timestamp ?? Date.now()) + this.clockSkew).toISOString(),
		};
		if (properties) e.properties = properties;
		if (value !== undefined) e.value = value;
		const q = this.#queue();
		q.push(e);
		this.#save("queue", q.slice(-MAX_QUEUE));
		if (q.length >= this.batchSize) this.flush();
		return e.event_id;
	}

	#eventsBody(events) {
		const body = { key: this.clientKey, events };
		if (this.consent) body.consent = this.consent;
		return JSON.stringify(body);
	}

	// #beacon hands every queued event to the browser, which delivers beacons after
	// the page is gone. Events of a flush still awaiting its answer are left to that
	// keepalive request (they stay queued, so the next page resends them if it failed).
	#beacon() {
		if (this.refused) return; // it would be refused too
		const queue = this.#queue().filter((e) => !this.inFlight.has(e.event_id));
		if (!queue.length || typeof navigator.sendBeacon !== "function") return;
		const sent = new Set();
		const send = (chunk) => {
			const blob = new Blob([this.#eventsBody(chunk)], { type: "text/plain;charset=UTF-8" });
			const ok = navigator.sendBeacon(this.endpoint + "/v1/events", blob);
			if (ok) for (const e of chunk) sent.add(e.event_id);
			return ok;
		};
		let chunk = [];
		let size = 0;
		for (const e of queue) {
			const n = JSON.stringify(e).length + 1;
			if (chunk.length && size + n > BEACON_BYTES - 200) {
				if (!send(chunk)) break; // quota used up: the rest waits for the next page
				chunk = [];
				size = 0;
			}
			chunk.push(e);
			size += n;
		}
		if (chunk.length && !sent.has(chunk[0].event_id)) send(chunk);
		this.#dropFromQueue(sent);
	}

	#dropFromQueue(ids) {
		if (ids.size) this.#save("queue", this.#queue().filter((e) => !ids.has(e.event_id)));
	}

	#queue() {
		return this.#load("queue") || [];
	}

	#post(path, body, headers, keepalive = false) {
		const text = typeof body === "string" ? body : JSON.stringify(body);
		const h = { "Content-Type": keepalive ? "text/plain;charset=UTF-8" : "application/json", ...headers };
		return fetch(this.endpoint + path, { method: "POST", headers: h, body: text, keepalive, credentials: "omit" });
	}

	#mayPersist() {
		return !this.consent || this.consent.analytics || this.consent.personalization;
	}

	#cookieDomain() {
		return this.cookieDomain ? "; Domain=" + this.cookieDomain : "";
	}

	// #anonymousId reads the visitor's id from its first-party cookie, or makes one. The
	// cookie is written (for a year) only while the visitor may be remembered.
	#anonymousId(fresh = false) {
		let id = fresh ? null : (this.anonymousId || readCookie(COOKIE));
		id ||= uuid();
		if (this.#mayPersist()) {
			const secure = location.protocol === "https:" ? "; Secure" : "";
			document.cookie = `${COOKIE}=${id}; Max-Age=31536000; Path=/; SameSite=Lax${secure}${this.#cookieDomain()}`;
		}
		return id;
	}

	#load(name) {
		try {
			const v = this.store?.getItem(PREFIX + name);
			return v ? JSON.parse(v) : null;
		} catch {
			return null;
		}
	}

	#save(name, value) {
		try {
			this.store?.setItem(PREFIX + name, JSON.stringify(value));
		} catch {
			// storage full or disabled: the SDK keeps working for this page
		}
	}

	#remove(name) {
		try {
			this.store?.removeItem(PREFIX + name);
		} catch {
			// disabled storage
		}
	}
}

// toMillis reads track()'s timestamp option as epoch milliseconds (undefined: none).
function toMillis(ts) {
	if (ts === undefined || ts === null) return undefined;
	let ms = NaN;
	if (ts instanceof Date) ms = ts.getTime();
	else if (typeof ts === "number") {
		if (Number.isFinite(ts) && Math.abs(ts) < 1e11 && ts !== 0) {
			throw new TypeError("lift: track(): timestamp " + ts + " looks like seconds; it takes epoch milliseconds (Date.now(), or seconds × 1000)");
		}
		ms = ts;
	} else if (typeof ts === "string" && RFC3339.test(ts)) ms = Date.parse(ts.replace(" ", "T"));
	if (!Number.isFinite(ms)) {
		const got = typeof ts === "string" ? JSON.stringify(ts) : String(ts);
		throw new TypeError("lift: track(): timestamp must be a Date, an RFC 3339 string with a time zone such as " +
			'"2026-12-07T08:00:00Z", or epoch milliseconds; got ' + got);
	}
	return ms;
}

function readCookie(name) {
	const m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
	return m ? decodeURIComponent(m[1]) : null;
}

function safeLocalStorage() {
	try {
		return window.localStorage;
	} catch {
		return null; // blocked (third-party frame, privacy mode)
	}
}

function uuid() {
	if (crypto.randomUUID) return crypto.randomUUID();
	// crypto.randomUUID needs a secure context; plain-http pages get the same v4 UUID this way.
	const b = crypto.getRandomValues(new Uint8Array(16));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
