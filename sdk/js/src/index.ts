// @abe-stack/sdk: the TypeScript client of abe.
export const VERSION = "0.1.0";
