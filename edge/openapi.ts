/** The OpenAPI 3.1 description served at /openapi.json (kept next to the routes it describes). */
import type { Limits } from './limits.ts';

const error = { $ref: '#/components/schemas/Error' };
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: error } } });
const json = (schema: object, description = 'OK') => ({ description, content: { 'application/json': { schema } } });

export function openApiDocument(limits: Limits) {
  const classifyParams = [
    { name: 'classes', in: 'query', schema: { type: 'string' }, description: 'Comma-separated labels or class indices to score; picks the cheapest model covering them.' },
    { name: 'subtask', in: 'query', schema: { type: 'string' }, description: 'A subtask name from the manifest.' },
    { name: 'model', in: 'query', schema: { type: 'string' }, description: 'An explicit model id.' },
    { name: 'top_k', in: 'query', schema: { type: 'integer', minimum: 1, default: 5 }, description: 'Number of predictions per image.' },
  ];
  return {
    openapi: '3.1.0',
    info: { title: 'Facet edge classifier', version: '0.1.0', description: 'Degradation-robust per-subtask image classifiers.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Only when the server has an API key configured.' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
        },
        ClassRef: { type: 'object', properties: { index: { type: 'integer' }, label: { type: 'string' } } },
        Prediction: { type: 'object', properties: { label: { type: 'string' }, index: { type: 'integer' }, score: { type: 'number' } } },
        ManifestServed: {
          type: 'object',
          description: 'The manifest this answer comes from.',
          properties: {
            sha256: { type: 'string', description: 'sha256 of the manifest file (compare with `sha256sum manifest.json`).' },
            createdAt: { type: 'string', description: 'When the compiler wrote it.' },
            servedSince: { type: 'string', description: 'When this process started serving it.' },
          },
        },
        Model: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            subtask: { type: ['string', 'null'] },
            classes: { type: 'array', items: { $ref: '#/components/schemas/ClassRef' } },
            macs: { type: 'integer' },
            params: { type: 'integer' },
          },
        },
        ClassifyResponse: {
          type: 'object',
          properties: {
            model: { $ref: '#/components/schemas/Model' },
            predictions: { type: 'array', items: { $ref: '#/components/schemas/Prediction' } },
            results: { type: 'array', items: { type: 'object', properties: { predictions: { type: 'array', items: { $ref: '#/components/schemas/Prediction' } } } } },
            timing: { type: 'object', properties: { decode_ms: { type: 'number' }, infer_ms: { type: 'number' }, total_ms: { type: 'number' } } },
          },
        },
      },
    },
    paths: {
      '/v1/classify': {
        post: {
          summary: 'Classify one image (raw body or JSON "image") or a batch (multipart "image" fields or JSON "images").',
          security: [{ bearer: [] }, {}],
          parameters: classifyParams,
          requestBody: {
            required: true,
            content: {
              'image/png': { schema: { type: 'string', format: 'binary' } },
              'image/jpeg': { schema: { type: 'string', format: 'binary' } },
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  properties: {
                    image: { type: 'array', maxItems: limits.maxBatch, items: { type: 'string', format: 'binary' } },
                    classes: { type: 'string' },
                    subtask: { type: 'string' },
                    model: { type: 'string' },
                    top_k: { type: 'integer' },
                  },
                },
              },
              'application/json': {
                schema: {
                  type: 'object',
                  properties: {
                    image: { type: 'string', description: 'base64 or data URL' },
                    images: { type: 'array', maxItems: limits.maxBatch, items: { type: 'string' } },
                    classes: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: ['string', 'integer'] } }] },
                    subtask: { type: 'string' },
                    model: { type: 'string' },
                    top_k: { type: 'integer' },
                  },
                },
              },
            },
          },
          responses: {
            200: json({ $ref: '#/components/schemas/ClassifyResponse' }),
            400: errorResponse('Undecodable image, malformed body, or unknown class (the message lists valid labels).'),
            401: errorResponse('API key missing or wrong.'),
            413: errorResponse(`Body over ${limits.maxBodyBytes} bytes, or more than ${limits.maxBatch} images.`),
            415: errorResponse('Unsupported Content-Type.'),
            422: errorResponse(`Invalid parameters, or an image over ${limits.maxPixels} pixels.`),
            503: errorResponse('The model needed is unavailable.'),
          },
        },
      },
      '/v1/models': {
        get: {
          summary: 'Models with classes, MACs, params and accuracies, and the manifest served (sha256, createdAt, servedSince).',
          security: [{ bearer: [] }, {}],
          responses: { 200: json({ type: 'object', properties: { manifest: { $ref: '#/components/schemas/ManifestServed' } } }) },
        },
      },
      '/healthz': { get: { summary: 'Process is alive.', responses: { 200: json({ type: 'object' }) } } },
      '/readyz': {
        get: {
          summary: 'All models of the manifest served load.',
          responses: { 200: json({ type: 'object', properties: { manifest: { $ref: '#/components/schemas/ManifestServed' } } }), 503: json({ type: 'object' }, 'Some model cannot load') },
        },
      },
      '/admin/reload': {
        post: {
          summary: 'Check the models folder now and serve its manifest if it changed and every model file matches it (Node, Bun and Deno also check on their own).',
          security: [{ bearer: [] }, {}],
          responses: {
            200: json({ type: 'object', properties: { status: { enum: ['reloaded', 'unchanged'] }, manifest: { $ref: '#/components/schemas/ManifestServed' }, models: { type: 'array', items: { type: 'string' } } } }),
            401: errorResponse('API key missing or wrong.'),
            422: errorResponse('The manifest in the folder was refused (invalid, or a model file does not match it); `manifest` names the one still served.'),
          },
        },
      },
      '/metrics': { get: { summary: 'Prometheus text metrics.', responses: { 200: { description: 'OK', content: { 'text/plain': {} } } } } },
      '/v2': { get: { summary: 'Open Inference Protocol server metadata.', responses: { 200: json({ type: 'object' }) } } },
      '/v2/health/live': { get: { summary: 'OIP liveness.', responses: { 200: json({ type: 'object' }) } } },
      '/v2/health/ready': { get: { summary: 'OIP readiness.', responses: { 200: json({ type: 'object' }), 503: json({ type: 'object' }) } } },
      '/v2/models/{name}': { get: { summary: 'OIP model metadata.', parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: json({ type: 'object' }), 404: errorResponse('Unknown model.') } } },
      '/v2/models/{name}/ready': { get: { summary: 'OIP model readiness.', parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: json({ type: 'object' }), 404: errorResponse('Unknown model.'), 503: errorResponse('Model cannot load.') } } },
      '/v2/models/{name}/infer': {
        post: {
          summary: 'OIP inference: one FP32 NCHW input tensor; outputs[].parameters.classification = k gives "score:index:label" strings.',
          parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
          responses: { 200: json({ type: 'object' }), 400: errorResponse('Invalid tensor.'), 404: errorResponse('Unknown model.'), 413: errorResponse('Too large.'), 503: errorResponse('Model unavailable.') },
        },
      },
    },
  };
}
