import { LabIcon } from '@jupyterlab/ui-components';

import pipelineSvg from '../style/pipeline.svg';

/** The sidebar tab's icon: three tasks wired as a small DAG (themed through `jp-icon3`). */
export const pipelineIcon = new LabIcon({ name: 'nbpipe:pipeline', svgstr: pipelineSvg });
