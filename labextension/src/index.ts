/**
 * jupyterlab-nbpipe: the "Pipelines" sidebar panel and the "Build pipeline" commands, as
 * separate JupyterLab plugins around one controller:
 *
 *   - core (`jupyterlab-nbpipe:plugin`): the controller, its settings; provides IPipelineController;
 *   - panel: the panel in the left sidebar and "Show Pipelines Panel";
 *   - commands: "Build Pipeline", "Force-Build Pipeline", "Cancel Pipeline Build", in the palette,
 *     and `nbpipe:build-task` (this task, or up to here; forced or not);
 *   - file-browser: "Build Pipeline" in the context menu of a `pipeline*.yaml` file;
 *   - notebook-toolbar: on a task's notebook, its chip, its parameters in the kernel ("Load Task
 *     Parameters") and the "Build task" menu; "Build pipeline" on a task's product.
 */
import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { commandsPlugin } from './plugins/commands';
import { corePlugin } from './plugins/core';
import { fileBrowserPlugin } from './plugins/fileBrowser';
import { notebookToolbarPlugin } from './plugins/notebookToolbar';
import { panelPlugin } from './plugins/panel';

export { IPipelineController, CommandIDs } from './tokens';
export type { IBuildTaskArgs } from './tokens';

const plugins: JupyterFrontEndPlugin<any>[] = [
  corePlugin,
  panelPlugin,
  commandsPlugin,
  fileBrowserPlugin,
  notebookToolbarPlugin
];

export default plugins;
