export const DEMO_SCRIPT = '';
