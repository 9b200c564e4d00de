/**
 * The environment every wrangler this project starts runs with (npm start and deploy, the tests,
 * the benches): no telemetry, and no download of Cloudflare's Request.cf sample. The app never
 * reads request.cf; fetching it from workers.cloudflare.com would be local dev's only outbound
 * request, and offline it prints a stack trace at every start. One place, so that a further
 * setting reaches every caller.
 */
export const WRANGLER_ENV = { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' } as const;
