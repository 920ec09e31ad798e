// TypeDoc plugin: the reference promises, for every public function, method, type and
// constant, a description, its errors and an example. TypeDoc's own `notDocumented`
// check covers descriptions only, so this one checks the rest and warns (an error
// under treatWarningsAsErrors) for each export that lacks an `@example` or, for
// callables, an `@throws` (functions that cannot fail say `@throws Never.`) or a
// `@param` description of each parameter.
import { Application, Comment, CommentTag, Converter, ReflectionKind } from 'typedoc';

const needsExample =
  ReflectionKind.Function |
  ReflectionKind.Method |
  ReflectionKind.Class |
  ReflectionKind.Interface |
  ReflectionKind.TypeAlias |
  ReflectionKind.Variable |
  ReflectionKind.Enum |
  ReflectionKind.Namespace;
const needsThrows = ReflectionKind.Function | ReflectionKind.Method;

/** Every comment that documents `refl`: its own and its signatures'. */
function commentsOf(refl) {
  const comments = [];
  if (refl.comment) comments.push(refl.comment);
  for (const sig of refl.signatures ?? []) if (sig.comment) comments.push(sig.comment);
  return comments;
}

function hasTag(refl, tag) {
  return commentsOf(refl).some((c) => c.blockTags.some((t) => t.tag === tag));
}

/** The `@category` tags of a declaration: on itself or on its signatures. */
function categoryTags(refl) {
  return commentsOf(refl).flatMap((c) => c.blockTags.filter((t) => t.tag === '@category'));
}

/** @param {Application} app */
export function load(app) {
  // A name exported twice (top-level and in the `socket` namespace) is documented once; the
  // other export is a reference, which TypeDoc would file under the default category. Give
  // each reference its target's categories, before TypeDoc's CategoryPlugin (priority -200)
  // sorts children into categories.
  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => {
    for (const refl of context.project.getReflectionsByKind(ReflectionKind.Reference)) {
      if (refl.comment) continue;
      const tags = categoryTags(refl.getTargetReflectionDeep());
      if (tags.length > 0) refl.comment = new Comment([], tags.map((t) => new CommentTag(t.tag, t.content)));
    }
  }, 0);
  app.on(Application.EVENT_VALIDATE_PROJECT, (project) => {
    for (const refl of project.getReflectionsByKind(needsExample)) {
      // Inherited members (e.g. from Error) are documented where they are declared.
      if (refl.flags.isExternal || refl.inheritedFrom) continue;
      const name = refl.getFriendlyFullName();
      if (!hasTag(refl, '@example')) app.logger.warn(`${name} (${ReflectionKind[refl.kind]}) has no @example`);
      if (refl.kindOf(needsThrows) && !hasTag(refl, '@throws')) {
        app.logger.warn(`${name} (${ReflectionKind[refl.kind]}) has no @throws (write "@throws Never." when it cannot fail)`);
      }
    }
    // Every parameter of a public callable says what it is for.
    for (const refl of project.getReflectionsByKind(needsThrows | ReflectionKind.Constructor)) {
      if (refl.flags.isExternal || refl.inheritedFrom) continue;
      for (const sig of refl.signatures ?? []) {
        for (const param of sig.parameters ?? []) {
          if (!param.comment || param.comment.summary.length === 0) {
            app.logger.warn(`${refl.getFriendlyFullName()}(${param.name}) (Parameter) has no @param description`);
          }
        }
      }
    }
    // TypeDoc does not ask constructors for a description; a public one needs it.
    for (const refl of project.getReflectionsByKind(ReflectionKind.Constructor)) {
      if (refl.inheritedFrom) continue;
      if (!commentsOf(refl).some((c) => c.summary.length > 0)) {
        app.logger.warn(`${refl.getFriendlyFullName()} (Constructor) does not have any documentation`);
      }
    }
  });
}
