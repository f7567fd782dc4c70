// Grafana's TypeScript types model string enums (ThresholdsMode, FieldColorModeId, MappingType, ...) as TS
// enums, which accept only enum members. A dashboard file holds their serialized values, so the JSON is
// checked against the same types with every string enum widened to the union of its values, and nothing
// else changed: required fields stay required and unknown properties stay errors.
export type Wire<T> =
  T extends string ? `${T}` :
  T extends readonly (infer E)[] ? Wire<E>[] :
  T extends object ? { [K in keyof T]: Wire<T[K]> } :
  T;
