/**
 * The golden test: the reducer derives from a recorded event stream exactly what the Python
 * reducer (`nbpipe/engine/state.py`) derived from it. Each `tests/golden/<name>.json` at the
 * repository's root holds `{"events": [contract events], "state": BuildState.to_dict() after
 * applying them in Python}`; the Python side checks the same files against its own reducer.
 */
import * as fs from 'fs';
import * as path from 'path';

import { applyEvent, BuildState, initialState } from '../src/reducer';
import type { NbpipeEvent } from '../src/types';

const GOLDEN = path.resolve(__dirname, '..', '..', 'tests', 'golden');
const EXPECTED = [
  'success',
  'failure_aborted_downstream',
  'early_stop',
  'cancelled',
  'server_restart'
];

interface Golden {
  events: NbpipeEvent[];
  state: BuildState;
}

const names: string[] = fs.existsSync(GOLDEN)
  ? fs
      .readdirSync(GOLDEN)
      .filter(name => name.endsWith('.json'))
      .map(name => name.slice(0, -'.json'.length))
      .sort()
  : [];

function load(name: string): Golden {
  return JSON.parse(fs.readFileSync(path.join(GOLDEN, `${name}.json`), 'utf8'));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    Object.values(value).forEach(deepFreeze);
  }
  return value;
}

describe('the recorded streams of tests/golden/', () => {
  it('are all there', () => {
    expect(names).toEqual(expect.arrayContaining(EXPECTED));
  });

  it.each(names.length ? names : EXPECTED)('%s: the reducer derives what Python derived', name => {
    const golden = load(name);
    expect(golden.events.length).toBeGreaterThan(0);
    expect(golden.events.reduce(applyEvent, initialState())).toStrictEqual(golden.state);
  });

  it.each(names.length ? names : EXPECTED)('%s: the reducer changes no state or event', name => {
    const golden = load(name);
    // Frozen, so that any change of what the reducer is given throws.
    const final = golden.events.reduce(
      (state, event) => applyEvent(deepFreeze(state), deepFreeze(event)),
      deepFreeze(initialState())
    );
    expect(final).toStrictEqual(golden.state);
  });
});
