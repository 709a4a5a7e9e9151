/**
 * What the extension's plugins share: the controller (one per JupyterLab page, provided by the
 * core plugin) and the ids of the commands.
 */
import { Token } from '@lumino/coreutils';

import type { PipelineController } from './controller';

/** The pipelines' state and actions: build, cancel, which pipeline a file belongs to. */
export const IPipelineController = new Token<PipelineController>(
  'jupyterlab-nbpipe:IPipelineController',
  'The nbpipe controller: pipelines, builds and their live state.'
);

export namespace CommandIDs {
  export const open = 'nbpipe:open-panel';
  export const build = 'nbpipe:build';
  export const cancel = 'nbpipe:cancel';
  export const buildFile = 'nbpipe:build-file';
  /**
   * Builds one task: args `{pipeline?, task, force?, upToHere?}` (see `IBuildTaskArgs`). Without
   * `upToHere` only the task runs (its upstream products must exist); with it, the task and what
   * it needs. `pipeline` defaults to the one picked in the panel.
   */
  export const buildTask = 'nbpipe:build-task';
  /** Runs the current notebook's task parameters in its kernel (args `{task?}`: a grid's task). */
  export const loadTaskParameters = 'nbpipe:load-task-parameters';
}

/** The arguments of `CommandIDs.buildTask`. */
export interface IBuildTaskArgs {
  /** The pipeline's spec, relative to the server root (default: the one picked in the panel). */
  pipeline?: string;
  task: string;
  /** Rebuild even if up to date. */
  force?: boolean;
  /** Build what the task needs too ("Build up to here"); otherwise only the task. */
  upToHere?: boolean;
}
