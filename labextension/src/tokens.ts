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
}
