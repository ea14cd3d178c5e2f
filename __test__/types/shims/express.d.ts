// A stand-in for @types/express (not a dependency of this repository), declaring the part of
// its API the usage files touch with the same shapes: `export =` of a callable module, routers
// whose verbs are overloaded matcher interfaces, handlers taking (req, res, next), and an
// application whose `get` is also the settings getter. Only types; the tests never run it.
declare module 'express' {
  namespace e {
    interface Request {
      method: string;
      path: string;
      params: Record<string, string>;
      query: Record<string, unknown>;
      body: any;
      headers: Record<string, string | string[] | undefined>;
      socket: { destroyed: boolean };
      on(event: string, listener: (...args: any[]) => void): this;
    }
    interface Response {
      status(code: number): this;
      json(body?: unknown): this;
      setHeader(name: string, value: number | string | readonly string[]): this;
      write(chunk: string): boolean;
      end(): this;
      flushHeaders(): void;
    }
    interface NextFunction {
      (err?: any): void;
      (deferToNext: 'router'): void;
    }
    type RequestHandler = (req: Request, res: Response, next: NextFunction) => void;
    type ErrorRequestHandler = (err: any, req: Request, res: Response, next: NextFunction) => void;
    type PathParams = string | RegExp | Array<string | RegExp>;
    type RequestHandlerParams = RequestHandler | ErrorRequestHandler | Array<RequestHandler | ErrorRequestHandler>;
    interface IRouterMatcher<T> {
      (path: PathParams, ...handlers: RequestHandler[]): T;
      (path: PathParams, ...handlers: RequestHandlerParams[]): T;
    }
    interface IRouterHandler<T> {
      (...handlers: RequestHandler[]): T;
      (...handlers: RequestHandlerParams[]): T;
    }
    interface IRouter extends RequestHandler {
      get: IRouterMatcher<this>;
      post: IRouterMatcher<this>;
      put: IRouterMatcher<this>;
      delete: IRouterMatcher<this>;
      options: IRouterMatcher<this>;
      use: IRouterHandler<this> & IRouterMatcher<this>;
    }
    interface Router extends IRouter {}
    interface Application extends IRouter {
      get: ((name: string) => any) & IRouterMatcher<this>;
      listen(port: number, callback?: () => void): { close(): void };
    }
    interface Express extends Application {}
    function Router(options?: { caseSensitive?: boolean; mergeParams?: boolean; strict?: boolean }): Router;
    function json(options?: { limit?: number | string; strict?: boolean }): RequestHandler;
  }
  function e(): e.Express;
  export = e;
}
