import './base.css';
import './graph.css';
import './taskChip.css';
