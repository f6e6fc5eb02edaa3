// Cron slots of runtime/sched against the npm cron-parser that bullmq uses.
//
// usage: node sched_interop.js <path to sched_cli>   (NODE_PATH: tests/interop/node_modules)
//
// Generates cases (pattern, zone, start instant) from a fixed seed, computes
// the next 5 slots of each as bullmq's job scheduler does (a fresh
// parseExpression(pattern, { ...repeatOpts, tz, currentDate }) per slot,
// currentDate = the previous slot, then .next()), and the same slots with
// sched_cli (nova__sched_next_n). Any difference fails the test, except
// differences inside a DST gap or overlap, which are counted and listed.
//
// What differs there, and why (runtime/sched/sched.h has our rules):
//  * Gap (spring forward: local times that do not exist): we never fire
//    them. cron-parser 4.9.0 (with luxon) mostly fires them moved forward
//    by the gap: "30 2 * * *" fires at 03:30 CEST on Europe/Paris's
//    spring-forward day, "0 2 * * *" at 03:00. But when the gap starts at
//    midnight (America/Sao_Paulo until 2019, 00:00 -> 01:00) it skips the
//    gap times like we do: "0 0 * * *" does not fire that day.
//  * Overlap (fall back: local times that happen twice): we fire them once,
//    at the first occurrence. cron-parser does the same when the hour field
//    lists fewer than 24 hours ("30 1 * * *", "15 1-3 * * *", "0 0-22 * * *"),
//    but when it has all 24 ("*", "0-23") it fires the repeat too: "0 * * * *"
//    fires at 01:00 EDT and again at 01:00 EST in America/New_York.
// So cron-parser's DST behaviour is no single rule (it depends on the hour
// field and on where the gap falls), and we do not copy it.
//
// A slot is "inside a DST gap/overlap" when it lies within |delta| of a
// change of the zone's offset by delta (luxon's zone data decides), i.e.
// its local time is one of the skipped or repeated ones, or the shifted
// copy of a skipped one.
'use strict';

const { spawnSync } = require('child_process');
const { parseExpression } = require('cron-parser');
const { DateTime } = require('luxon');

const cli = process.argv[2];
if (!cli) {
    console.error('usage: node sched_interop.js <sched_cli>');
    process.exit(2);
}

const SLOTS = 5;
const ZONES = ['UTC', 'Europe/Paris', 'America/New_York', 'Australia/Sydney', 'Asia/Kolkata',
    'America/Sao_Paulo'];
const HOUR = 3600e3, DAY = 24 * HOUR;

// xorshift32 with a fixed seed: the same cases on every run.
let state = 0x6e6f7661;
function rnd() {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));

// Hand-picked patterns: every kind of field syntax at least once.
const FIXED = [
    '0 * * * *', '*/15 * * * *', '30 2 * * *', '30 1 * * *', '0 2 * * *', '0 3 * * *',
    '15 1-3 * * *', '0 0 * * *', '59 23 * * *', '0 0 1 * *', '0 12 31 * *', '0 0 29 2 *',
    '0 9 * * mon-fri', '0 9 * * MON-FRI', '30 8 1,15 * 5', '0 0 13 * fri', '0 6 1-7 * sun',
    '0 0 * jan,jul *', '0 0 1 */3 *', '5 4 * * sun', '0 22 * * 1-5', '23 0-20/2 * * *',
    '0 0,12 1 * *', '0 */6 * * *', '10-20/5 * * * *', '5/20 * * * *', '0 0 * * 7',
    '0 0 * * 0,7', '0 12 * feb-apr wed', '*/30 * * * * *', '0 */20 * * * *', '15 30 2 * * *',
    '0 0 1 * * *', '45 59 23 31 12 *', '0 0 * * 2-7/2', '0 0 * * 3/2', '0 0 15 * 1-7',
    '0 0 1-30 4 mon', '0 0 2-31 * mon', '0 0 1 * 0-6', '*/10 0-3 * * *', '0,30 * * * *',
    '0 1-3 * * *', '30 0 * * *', '0 0-23 * * *', '0 0-22 * * *',
];

const MIN = ['*', '0', '0', '*/5', '*/15', '15', '0,30', '5-10', '10-40/10', '7/20', '45', '59',
    () => String(int(0, 59))];
const HOUR_F = ['*', '*', '0', '1', '2', '3', '*/2', '*/6', '9-17', '1-3', '0,12', '22/1', '0-5',
    () => String(int(0, 23))];
const DOM = ['*', '*', '*', '1', '15', '1,15', '*/2', '10-20', '31', '29', '28-31', '5/7', '1-30',
    () => String(int(1, 28))];
const MON = ['*', '*', '*', '*/3', 'jan-jun', '1,4,7,10', 'feb', 'mar-nov/2', 'dec', '2',
    '10-12', 'Oct', '*/2'];
const DOW = ['*', '*', '*', 'mon-fri', '0', 'sun', '6,0', '1-5', '*/2', '2-7/2', '3/2', 'sat',
    'tue,thu', '1-7', '0-6', '7', 'MON'];
const SEC = ['0', '*/15', '30', '0,30', '10-20/5', '*', '59', () => String(int(0, 59))];

const val = (f) => (typeof f === 'function' ? f() : f);
function randomPattern() {
    const five = [val(pick(MIN)), val(pick(HOUR_F)), val(pick(DOM)), val(pick(MON)),
        val(pick(DOW))].join(' ');
    return rnd() < 0.2 ? `${val(pick(SEC))} ${five}` : five;
}

// Offset changes of each zone, 2015-2031, from luxon's (ICU's) zone data.
const offsetMin = (ms, zone) => DateTime.fromMillis(ms, { zone }).offset;
function changeNear(ms, zone) {
    let lo = ms - 3 * HOUR, hi = ms + 3 * HOUR;
    const o1 = offsetMin(lo, zone), o2 = offsetMin(hi, zone);
    if (o1 === o2)
        return null;
    while (hi - lo > 1000) {
        const mid = Math.floor((lo + hi) / 2000) * 1000;
        if (offsetMin(mid, zone) === o1)
            lo = mid;
        else
            hi = mid;
    }
    return { at: hi, delta: (o2 - o1) * 60e3 };
}
const changes = {};
for (const zone of ZONES) {
    changes[zone] = [];
    let prev = offsetMin(Date.UTC(2015, 0, 1, 12), zone);
    for (let t = Date.UTC(2015, 0, 2, 12); t < Date.UTC(2031, 0, 1); t += DAY) {
        const o = offsetMin(t, zone);
        if (o !== prev) {
            let lo = t - DAY, hi = t;
            while (hi - lo > 1000) {
                const mid = Math.floor((lo + hi) / 2000) * 1000;
                if (offsetMin(mid, zone) === prev)
                    lo = mid;
                else
                    hi = mid;
            }
            changes[zone].push({ at: hi, delta: (o - prev) * 60e3 });
            prev = o;
        }
    }
}

// bullmq (classes/job-scheduler.js defaultRepeatStrategy): parseExpression(
// pattern, { ...repeatOpts, currentDate }).next().getTime(), afresh for each slot.
function cronParserSlots(pattern, tz, start) {
    const out = [];
    let cur = start;
    for (let i = 0; i < SLOTS; i++) {
        const it = parseExpression(pattern, { pattern, tz, currentDate: new Date(cur) });
        cur = it.next().getTime();
        out.push(cur);
    }
    return out;
}

const cases = [];
function addCase(pattern, tz, start) {
    let slots;
    try {
        slots = cronParserSlots(pattern, tz, start);
    } catch (e) {
        return false; // cron-parser refuses it or gives up (loop limit): no reference
    }
    cases.push({ pattern, tz, start, theirs: slots });
    return true;
}

const randomStart = () => Date.UTC(2016, 0, 1) + Math.floor(rnd() * (Date.UTC(2031, 0, 1) -
    Date.UTC(2016, 0, 1)));
function nearChange(zone) {
    const c = pick(changes[zone]);
    const back = rnd() < 0.5 ? int(0, 4 * 3600) * 1000 : int(0, 3 * 86400) * 1000;
    let t = c.at - back;
    if (rnd() < 0.3)
        t = Math.floor(t / HOUR) * HOUR; // exactly on a whole hour: slots are strictly after
    else
        t += int(0, 999);
    return t;
}

for (const pattern of FIXED) {
    for (const zone of ZONES) {
        addCase(pattern, zone, randomStart());
        if (changes[zone].length > 0)
            addCase(pattern, zone, nearChange(zone));
    }
}
// Each zone's first gap and first overlap of 2018 (Sao Paulo's last DST
// year), with patterns that touch them, from a few hours and a day before.
const DST_PATTERNS = ['0 * * * *', '*/30 * * * *', '30 2 * * *', '30 1 * * *', '0 0 * * *',
    '30 0 * * *', '0 2 * * *', '0 3 * * *', '15 1-3 * * *', '0 0-22 * * *', '0 30 * * * *',
    '0 */2 * * *', '59 1 * * *', '0 0 * * sun'];
for (const zone of ZONES) {
    const y2018 = changes[zone].filter((c) => new Date(c.at).getUTCFullYear() === 2018);
    for (const c of [y2018.find((x) => x.delta > 0), y2018.find((x) => x.delta < 0)]) {
        if (c === undefined)
            continue;
        for (const pattern of DST_PATTERNS) {
            addCase(pattern, zone, c.at - 3 * HOUR);
            addCase(pattern, zone, c.at - 26 * HOUR + 1);
        }
    }
}
for (let n = 0; n < 300;) {
    const zone = pick(ZONES);
    const start = changes[zone].length > 0 && rnd() < 0.4 ? nearChange(zone) : randomStart();
    if (addCase(randomPattern(), zone, start))
        n++;
}

// Our slots.
const input = cases.map((c) => `${c.start}\t${c.tz === 'UTC' ? '' : c.tz}\t${SLOTS}\t${c.pattern}\n`)
    .join('');
const run = spawnSync(cli, [], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
if (run.status !== 0 || run.error) {
    console.error(`sched_interop: ${cli} failed: ${run.error || run.stderr || run.status}`);
    process.exit(1);
}
const lines = run.stdout.split('\n');

const iso = (ms, zone) => `${new Date(ms).toISOString()} (${DateTime.fromMillis(ms, { zone })
    .toFormat("yyyy-MM-dd HH:mm:ss ZZ")})`;
function dstKind(ms, zone) {
    const c = changeNear(ms, zone);
    if (c === null || Math.abs(ms - c.at) > Math.abs(c.delta))
        return null;
    return c.delta > 0 ? 'gap' : 'overlap';
}

let same = 0, dstCases = 0, failures = 0, slotsCompared = 0;
const dstSlots = { 'gap, cron-parser only': 0, 'gap, ours only': 0, 'overlap, cron-parser only': 0,
    'overlap, ours only': 0 };
cases.forEach((c, i) => {
    const line = lines[i] || '';
    if (line.startsWith('error:')) {
        failures++;
        console.log(`FAIL "${c.pattern}" ${c.tz}: we refuse it (${line}), cron-parser accepts it`);
        return;
    }
    const ours = line.split(' ').filter((x) => x !== '').map(Number);
    slotsCompared += SLOTS;
    if (ours.length === SLOTS && ours.every((v, k) => v === c.theirs[k])) {
        same++;
        return;
    }
    // Compare as sets up to the earlier of the two last slots: after a
    // difference each side goes on from its own slot.
    const horizon = Math.min(ours.length ? ours[ours.length - 1] : -Infinity,
        c.theirs[SLOTS - 1]);
    const oursSet = new Set(ours), theirsSet = new Set(c.theirs);
    const diff = [];
    for (const t of c.theirs)
        if (t <= horizon && !oursSet.has(t))
            diff.push({ t, who: 'cron-parser only' });
    for (const t of ours)
        if (t <= horizon && !theirsSet.has(t))
            diff.push({ t, who: 'ours only' });
    const kinds = diff.map((d) => dstKind(d.t, c.tz));
    const head = `"${c.pattern}" ${c.tz} after ${iso(c.start, c.tz)}`;
    if (ours.length !== SLOTS || diff.length === 0 || kinds.some((k) => k === null)) {
        failures++;
        console.log(`FAIL ${head}`);
        console.log(`  cron-parser: ${c.theirs.map((t) => iso(t, c.tz)).join(', ')}`);
        console.log(`  ours:        ${ours.map((t) => iso(t, c.tz)).join(', ')}`);
        return;
    }
    dstCases++;
    console.log(`DST ${head}`);
    diff.forEach((d, k) => {
        dstSlots[`${kinds[k]}, ${d.who}`]++;
        console.log(`  ${kinds[k]}: ${d.who}: ${iso(d.t, c.tz)}`);
    });
});

console.log(`sched_interop: cron-parser ${require('cron-parser/package.json').version}, ` +
    `${cases.length} cases, ${slotsCompared} slots: ${same} cases equal, ` +
    `${dstCases} differ only inside DST gaps/overlaps, ${failures} failures`);
console.log(`sched_interop: DST slots: ${Object.entries(dstSlots).map(([k, v]) => `${k} ${v}`)
    .join(', ')}`);
if (cases.length < 300) {
    console.log('sched_interop: FAIL: fewer than 300 cases');
    process.exit(1);
}
process.exit(failures === 0 ? 0 : 1);
