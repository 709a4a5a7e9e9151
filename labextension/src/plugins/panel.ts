/**
 * The Pipelines panel in the left sidebar, and the command that shows it.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import { PipelineController } from '../controller';
import { pipelineIcon } from '../icons';
import { PipelinePanel } from '../panel';
import { CommandIDs, IPipelineController } from '../tokens';

export const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-nbpipe:panel',
  description: 'The Pipelines panel: pick a pipeline, build it, watch every task live.',
  autoStart: true,
  requires: [IPipelineController],
  optional: [ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    controller: PipelineController,
    restorer: ILayoutRestorer | null
  ) => {
    const { commands, shell, docRegistry } = app;
    const open = (path: string, asNotebook = false) => {
      // A notebook task's percent script (clean.py) opens as a notebook when jupytext is there,
      // else in the editor; everything else opens with its default viewer.
      const script = asNotebook && !path.toLowerCase().endsWith('.ipynb');
      const factory =
        script && docRegistry.getWidgetFactory('Jupytext Notebook')
          ? 'Jupytext Notebook'
          : undefined;
      void commands.execute('docmanager:open', factory ? { path, factory } : { path });
    };
    const openInBrowserTab = (path: string) => {
      window.open(controller.api.filesUrl(path), '_blank', 'noopener');
    };

    const panel = new PipelinePanel(controller, { open, openInBrowserTab });
    shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, 'nbpipe-panel');

    commands.addCommand(CommandIDs.open, {
      label: 'Show Pipelines Panel',
      caption: 'Show the nbpipe pipelines panel',
      icon: pipelineIcon,
      execute: () => shell.activateById(panel.id)
    });

    // Back in view (another browser tab, a laptop waking up): reconcile with the server.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && panel.isVisible) {
        void controller.refresh();
      }
    });
  }
};
