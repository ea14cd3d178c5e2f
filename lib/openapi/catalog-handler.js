// CatalogHandler: `GET /code/actions`, the catalog of the tools a registry holds and the
// OpenAPI sources they came from (the original's b/openapi/catalog-handler.ts, contract
// 1.U/1.J in docs/compatibility.md). Routes have SessionHandler's shape, so registerExpressRoutes can mount them;
// they are not part of SessionHandler and must be registered on their own.
'use strict';

// The service of tools that no OpenAPI source provided.
const DEFAULT_SERVICE = 'default';
const EMPTY_VERSION = 'empty';

class CatalogHandler {
  #registry;
  #sources;

  // `sources` is read at every request, so sources added to the same array later (as
  // Broker.getOpenApiSources() returns) are included.
  constructor(toolRegistry, sources) {
    if (
      toolRegistry === null ||
      typeof toolRegistry !== 'object' ||
      typeof toolRegistry.list !== 'function' ||
      typeof toolRegistry.get !== 'function'
    ) {
      throw new TypeError('CatalogHandler needs a tool registry (an object with list and get)');
    }
    if (sources !== undefined && !Array.isArray(sources)) {
      throw new TypeError('CatalogHandler sources must be an array of OpenApiSource');
    }
    this.#registry = toolRegistry;
    this.#sources = sources ?? [];
  }

  getRoutes() {
    return [{ method: 'GET', path: '/code/actions', handler: this.#getActions.bind(this) }];
  }

  buildCatalog() {
    const services = [];
    const serviceOfTool = new Map();
    for (const source of this.#sources) {
      const name = source.getName();
      const stats = source.getStats();
      // The spec URL stays internal to the source, as in the original.
      services.push({ name, specUrl: '', lastUpdated: stats.lastUpdate, actionCount: stats.toolCount });
      for (const toolName of source.getToolNames()) serviceOfTool.set(toolName, name);
    }

    const actions = [];
    for (const name of this.#registry.list()) {
      const tool = this.#registry.get(name);
      if (!tool) continue;
      actions.push({ name: tool.name, description: tool.description, service: serviceOfTool.get(name) ?? DEFAULT_SERVICE });
    }

    // Sorted so the version does not depend on the order sources were added in. The array
    // is a fresh copy, and toSorted() would need Node 20 (the package supports 18).
    // oxlint-disable-next-line unicorn/no-array-sort
    const hashes = this.#sources.map((source) => source.getStats().specHash).sort();
    const version = hashes.join(':') || EMPTY_VERSION;
    return { actions, services, version };
  }

  async #getActions(_req, res) {
    const catalog = this.buildCatalog();
    res.status(200);
    res.json(catalog);
  }
}

module.exports = { CatalogHandler };
