// Node ESM resolve hook: tfjs-core's ESM build (dist/*.js) uses extensionless relative
// imports, which Node's ESM loader rejects. Only the gradient registrations live there
// (the CommonJS node bundle has none), so we resolve those imports by adding '.js'.
export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL ?? '';
  if (specifier.startsWith('.') && !/\.[cm]?js$/.test(specifier) && parent.includes('/@tensorflow/tfjs-core/dist/')) {
    try {
      return await nextResolve(specifier + '.js', context);
    } catch {
      return nextResolve(specifier + '/index.js', context);
    }
  }
  return nextResolve(specifier, context);
}
