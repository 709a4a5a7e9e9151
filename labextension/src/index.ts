/**
 * jupyterlab-nbpipe: the "Pipelines" sidebar panel and the "Build pipeline" commands.
 *
 * Entry points, all running the same commands:
 *   - the panel in the left sidebar (pick a pipeline, Build / Force / Cancel, live task states);
 *   - the command palette ("Build pipeline", "Force-build pipeline", "Cancel pipeline build");
 *   - the file browser's context menu on a `pipeline*.yaml` / `pipeline*.yml` file;
 *   - a toolbar button on notebooks that are a task's source or product.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, ToolbarButton } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import { NbpipeApi } from './api';
import { PipelineController } from './controller';
import { pipelineIcon } from './icons';
import { isPipelineFile } from './model';
import { PipelinePanel } from './panel';

const PLUGIN_ID = 'jupyterlab-nbpipe:plugin';

export namespace CommandIDs {
  export const open = 'nbpipe:open-panel';
  export const build = 'nbpipe:build';
  export const cancel = 'nbpipe:cancel';
  export const buildFile = 'nbpipe:build-file';
}

/** Widget factories that show notebooks (JupyterLab's, and jupytext's for percent scripts). */
const NOTEBOOK_FACTORIES = ['Notebook', 'Jupytext Notebook'];

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Build nbpipe pipelines from JupyterLab and watch every task live.',
  autoStart: true,
  optional: [ICommandPalette, IFileBrowserFactory, ILayoutRestorer, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    browsers: IFileBrowserFactory | null,
    restorer: ILayoutRestorer | null,
    settings: ISettingRegistry | null
  ) => {
    const { commands, shell, docRegistry, serviceManager } = app;
    const api = new NbpipeApi(serviceManager.serverSettings);
    const controller = new PipelineController({ api, events: serviceManager.events });

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
      window.open(api.filesUrl(path), '_blank', 'noopener');
    };

    const panel = new PipelinePanel(controller, { open, openInBrowserTab });
    shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, 'nbpipe-panel');

    const showPanel = () => shell.activateById(panel.id);

    commands.addCommand(CommandIDs.open, {
      label: 'Show Pipelines Panel',
      caption: 'Show the nbpipe pipelines panel',
      icon: pipelineIcon,
      execute: showPanel
    });

    commands.addCommand(CommandIDs.build, {
      label: args => (args.force ? 'Force-Build Pipeline' : 'Build Pipeline'),
      caption: args =>
        args.force
          ? 'Rebuild every task of the pipeline picked in the Pipelines panel'
          : 'Build the outdated tasks of the pipeline picked in the Pipelines panel',
      icon: args => (args.toolbar ? pipelineIcon : undefined),
      isEnabled: args => !!args.path || !!controller.state.selected,
      execute: async args => {
        showPanel();
        const path = typeof args.path === 'string' ? args.path : undefined;
        await controller.build({ force: !!args.force, path });
      }
    });

    commands.addCommand(CommandIDs.cancel, {
      label: 'Cancel Pipeline Build',
      caption: 'Stop the build running for the pipeline picked in the Pipelines panel',
      isEnabled: () => !!controller.state.build,
      execute: async () => {
        showPanel();
        await controller.cancel();
      }
    });

    const selectedPipelineFile = (): string | null => {
      const browser = browsers?.tracker.currentWidget;
      if (!browser) {
        return null;
      }
      const first = browser.selectedItems().next();
      const model = first.done ? null : first.value;
      return model && model.type !== 'directory' && isPipelineFile(model.path) ? model.path : null;
    };

    commands.addCommand(CommandIDs.buildFile, {
      label: 'Build Pipeline',
      caption: 'Build this pipeline with nbpipe',
      icon: pipelineIcon,
      isVisible: () => selectedPipelineFile() !== null,
      execute: async () => {
        const path = selectedPipelineFile();
        if (path) {
          showPanel();
          await controller.build({ path });
        }
      }
    });

    app.contextMenu.addItem({
      command: CommandIDs.buildFile,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 3
    });

    if (palette) {
      const category = 'Pipelines';
      palette.addItem({ command: CommandIDs.build, category });
      palette.addItem({ command: CommandIDs.build, category, args: { force: true } });
      palette.addItem({ command: CommandIDs.cancel, category });
      palette.addItem({ command: CommandIDs.open, category });
    }

    const toolbar = new NotebookBuildButton(controller, commands);
    for (const factory of NOTEBOOK_FACTORIES) {
      docRegistry.addWidgetExtension(factory, toolbar);
    }

    if (settings) {
      settings
        .load(PLUGIN_ID)
        .then(loaded => {
          const apply = () => {
            controller.historySize = (loaded.get('historySize').composite as number) ?? 10;
          };
          apply();
          loaded.changed.connect(apply);
        })
        .catch(reason => console.warn('nbpipe: could not load the settings', reason));
    }

    // Back in view (another browser tab, a laptop waking up): reconcile with the server.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && panel.isVisible) {
        void controller.refresh();
      }
    });
    void app.restored.then(() => controller.refresh());
  }
};

/**
 * A "Build pipeline" button on the toolbar of notebooks that belong to a pipeline (a task's
 * source or one of its products), added once the panel knows which pipeline that is.
 */
class NotebookBuildButton implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(
    private readonly _controller: PipelineController,
    private readonly _commands: JupyterFrontEnd['commands']
  ) {}

  createNew(panel: NotebookPanel, context: DocumentRegistry.IContext<INotebookModel>): IDisposable {
    let button: ToolbarButton | null = null;
    let disposed = false;
    void context.ready
      .then(() => this._controller.pipelineOf(context.path))
      .then(pipeline => {
        if (!pipeline || disposed || panel.isDisposed) {
          return;
        }
        button = new ToolbarButton({
          icon: pipelineIcon,
          label: 'Build pipeline',
          tooltip: `Build ${pipeline} (nbpipe)`,
          className: 'jp-nbpipe-toolbar-build',
          onClick: () => void this._commands.execute(CommandIDs.build, { path: pipeline })
        });
        panel.toolbar.insertItem(10, 'nbpipe-build', button);
      })
      .catch(reason => console.warn('nbpipe: no pipeline for', context.path, reason));
    return new DisposableDelegate(() => {
      disposed = true;
      button?.dispose();
    });
  }
}

export default plugin;
