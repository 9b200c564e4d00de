/**
 * The demo page's sample gallery: edge/demo/build.ts makes this module at bundle time from
 * examples/gallery.json (scripts/make-demo-samples.ts) and the PNGs it lists, as data URLs, so
 * the page carries its samples on every runtime (workerd has no file system).
 */
declare module 'facet:demo-samples' {
  export interface DemoSample {
    /** Path under examples/. */
    file: string;
    /** The true class. */
    label: string;
    /** Position in the Fashion-MNIST test set. */
    testIndex: number;
    /** The PNG as a data: URL. */
    dataUrl: string;
  }
  export const SAMPLES: readonly DemoSample[];
}
