// The `websocket` npm package (WebSocket-Node) ships no type declarations; the dialect tests use it untyped.
declare module 'websocket';
