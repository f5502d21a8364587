/**
 * Model-based tests of the runtime (issue 5): paths enumerated from the generated connection
 * machine with xstate/graph are replayed against the real runtime over loopback sockets by a
 * scripted raw peer, checking the runtime's full lifecycle state after each step.
 *
 * - test/model/support/model.ts: which paths (both roles, every guard configuration, timers as
 *   events) and what each covers (states and transition definitions, per role);
 * - test/model/support/rig.ts: the SUT and the raw peer, and each event's real-world cause;
 * - test/model/support/clock.ts / wire.ts: the model clock, and hand-made handshakes and frames.
 *
 * Each step is checked three ways: the runtime's full state value (open's regions included) equals
 * the model's; the lifecycle step it emitted names the model's event (or a documented mapping);
 * and the peer received exactly what the step's actions put on the wire (close frames and their
 * codes, pings, the TCP close) and nothing else.
 *
 * Two tiers: the covering paths (a greedy set cover of every state, transition and realizable
 * ignored event, per role) always run; every other simple path and graph edge runs after them,
 * catching history the state value forgets (pause, then close: reading must resume). Coverage
 * counts only paths whose replay passed; the last test prints covered / total and fails below 100%.
 */
import { expect } from 'chai';
import { ignoredPairs, inventory, planPaths, ROLES, type ModelPath, type Role } from './support/model.js';
import { ClientRig, Divergence, ServerRig, mappingsSeen, replay, teardown, type Connection } from './support/rig.js';

const plan = planPaths();
const all = inventory();
const covered = new Set<string>();
/**
 * After this many divergences, the remaining paths of the exhaustive tier fail at once instead of
 * each waiting out its settle time: a broken runtime keeps the suite's duration bounded, and the
 * first divergences are the ones to read. The covering tier always runs in full.
 */
const DIVERGENCE_BUDGET = 20;
let divergences = 0;

describe('model-based: connection machine paths replayed against the runtime', function () {
  this.timeout(10_000);
  const rigs = { server: new ServerRig(), client: new ClientRig() };

  after(async () => {
    await rigs.server.close();
    await rigs.client.close();
  });

  const replayPath = (path: ModelPath, budgeted: boolean) => async () => {
    if (budgeted && divergences >= DIVERGENCE_BUDGET) throw new Error(`not replayed: ${divergences} paths diverged already`);
    const conn: Connection = await rigs[path.role].connect(path.config);
    try {
      await replay(conn, path);
    } catch (error) {
      if (error instanceof Divergence) divergences++;
      throw error;
    } finally {
      await teardown(conn);
    }
    for (const item of path.covers) covered.add(`${path.role}|${item}`);
  };

  for (const role of ROLES) {
    describe(`${role} role: paths covering every state and transition`, () => {
      for (const path of plan.covering.filter((p) => p.role === role)) it(path.description, replayPath(path, false));
    });
  }
  for (const role of ROLES) {
    describe(`${role} role: every other simple path and graph edge`, () => {
      for (const path of plan.exhaustive.filter((p) => p.role === role)) it(path.description, replayPath(path, true));
    });
  }

  // A suite's own tests run before its child suites: the coverage check is a suite of its own, after the roles'.
  describe('coverage', () => {
    it('covers every state and every transition of the connection machine, per role', () => {
      const missing: string[] = [];
      let statesTotal = 0;
      let statesCovered = 0;
      let transitionsTotal = 0;
      let transitionsCovered = 0;
      const lines: string[] = [];
      for (const role of ROLES as Role[]) {
        const states = all.states.get(role)!;
        const transitions = all.transitions.get(role)!;
        const s = states.filter((path) => covered.has(`${role}|state:${path}`));
        const t = transitions.filter((key) => covered.has(`${role}|transition:${key}`));
        statesTotal += states.length;
        statesCovered += s.length;
        transitionsTotal += transitions.length;
        transitionsCovered += t.length;
        lines.push(`  ${role}: states ${s.length}/${states.length}, transitions ${t.length}/${transitions.length} (not applicable to this role: ${all.roleExcluded.get(role)!.length})`);
        for (const path of states) if (!s.includes(path)) missing.push(`${role} state ${path}`);
        for (const key of transitions) if (!t.includes(key)) missing.push(`${role} transition ${key}`);
      }
      // The events each state declares it ignores: replayed where a real-world cause exists, the runtime must not move.
      const ignores = ignoredPairs();
      const realizable = ignores.all.filter((pair) => !ignores.unrealizable.includes(pair));
      for (const role of ROLES as Role[]) {
        const done = realizable.filter((pair) => covered.has(`${role}|ignore:${pair}`));
        lines.push(`  ${role}: ignored (state, event) pairs checked ${done.length}/${realizable.length} (${ignores.unrealizable.length} more have no real-world cause)`);
        for (const pair of realizable) if (!done.includes(pair)) missing.push(`${role} ignored ${pair}`);
      }
      const percent = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
      console.log(
        [
          '',
          `  model-based coverage of the connection machine (${plan.covering.length} covering + ${plan.exhaustive.length} further paths replayed, from ${plan.candidates} generated event sequences; ${plan.dropped} dropped as unrealizable):`,
          `  states ${statesCovered}/${statesTotal} (${percent(statesCovered, statesTotal)}), transitions ${transitionsCovered}/${transitionsTotal} (${percent(transitionsCovered, transitionsTotal)})`,
          ...lines,
          ...[...mappingsSeen].map((m) => `  known mapping: ${m.role} in ${m.from}, the model's ${m.model} reaches the runtime as ${m.runtime} (${m.why})`),
          ...(missing.length > 0 ? ['  not covered:', ...missing.map((m) => `    ${m}`)] : []),
          '',
        ].join('\n'),
      );
      expect(missing, 'states and transitions not covered by a passing path').to.deep.equal([]);
      expect(statesCovered).to.equal(statesTotal);
      expect(transitionsCovered).to.equal(transitionsTotal);
    });
  });
});
