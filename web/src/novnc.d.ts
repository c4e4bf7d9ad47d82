// noVNC 1.7 ships no types and exports its RFB class as the package's only entry; DefinitelyTyped describes that
// class under its older path.
declare module '@novnc/novnc' {
  export { default } from '@novnc/novnc/lib/rfb';
}
