/**
 * What the server sends: the REST answers (nbpipe/server/openapi.yaml) and the event bus's
 * envelopes. The build events themselves are the engine's contract, typed from its JSON Schema
 * (`events.generated.ts`); a build's state is the reducer's (`reducer.ts`).
 */
import type { NbpipeEvent } from './events.generated';
import type { BuildState, BuildStateName, TaskStatus } from './reducer';

export type {
  BuildCancelling,
  BuildCreated,
  BuildEnded,
  BuildFinished,
  BuildStarted,
  NbpipeEvent,
  TaskAborted,
  TaskCancelled,
  TaskFailed,
  TaskFailure,
  TaskFinished,
  TaskQueued,
  TaskSkipped,
  TaskStarted,
  TaskStoppedEarly
} from './events.generated';
export type { BuildState, BuildStateName, TaskState, TaskStatus } from './reducer';

/** The id of the event bus schema of the server's build events. */
export const EVENT_SCHEMA_ID = 'https://events.nbpipe.org/build/v2';

/**
 * One event on the server's event bus: the engine's (or the server's supervisor) event, unchanged
 * except that paths inside the server root are relative to it, numbered within its build (`seq`,
 * from 1), with the build's state after it.
 */
export interface BuildEnvelope {
  build_id: string;
  pipeline: string;
  seq: number;
  /** The build's state after the event. */
  state: BuildStateName;
  event: NbpipeEvent;
}

/** What the server adds to a build's state: who asked for it, and how far its events go. */
export interface BuildRecord {
  id: string;
  pipeline: string;
  force: boolean;
  targets: string[];
  created: number;
  /** How many of the build's events this reflects. */
  seq: number;
  /**
   * Tasks per status (only statuses that occur), in the server's answers; the panel derives its
   * own from the tasks (`summary()` in model.ts).
   */
  counts?: { [status: string]: number };
}

/**
 * A build as GET /builds/{id} sends it: the server's fields and the reducer's state. Products
 * and failure paths are relative to the server root when they lie in it, absolute otherwise.
 */
export interface Build extends BuildRecord, BuildState {}

/** A build in a list (the history, a pipeline's last build): a build without its tasks. */
export type BuildSummary = Omit<Build, 'tasks'>;

/** A file a task makes. `in_root`: it lies in the server root (so JupyterLab can open it). */
export interface Product {
  path: string;
  in_root: boolean;
}

export type PipelineTaskState = 'up to date' | 'outdated' | 'never built' | 'error';

export interface PipelineTask {
  name: string;
  kind: 'notebook' | 'function';
  source: string | null;
  upstream: string[];
  /** The grid the task is one combination of (the spec entry's name as written), else null. */
  grid?: string | null;
  products: Product[];
  state: PipelineTaskState;
  reasons: string[];
  last_built: number | null;
  last_result: { state: TaskStatus; ended: number | null; build_id: string } | null;
}

export interface Pipeline {
  path: string;
  name: string;
  executor: string;
  tasks: PipelineTask[];
  edges: [string, string][];
  warnings: string[];
  building: string | null;
  last_build: BuildSummary | null;
}

export interface PipelineListing {
  path: string;
  building: string | null;
  last_build: BuildSummary | null;
}

/** The answer to POST /builds and POST /builds/{id}/cancel. */
export interface Accepted {
  id: string;
  pipeline: string;
  state: BuildStateName;
}
