"""DO604 java-multi-stage: build with Maven or Gradle in a stage, run the jar on a JRE.

## What it does
Finds a single-stage Dockerfile on a Maven, Gradle or JDK image that packages the application
(``mvn package``, ``./mvnw verify``, ``gradle build``, ``./gradlew bootJar`` ...) and rewrites it into
a build stage (the original steps) and a runtime stage on an Eclipse Temurin JRE of the same Java
version (template ``java.toml``: ``maven:3.9-eclipse-temurin-17`` -> ``eclipse-temurin:17-jre``).
The runtime stage copies the jar the container starts (``java -jar target/app.jar``; with a
wildcard, the matching jars; without ``-jar``, the build output folder ``target`` or
``build/libs``) and the files of the context the application may read (everything copied except
``src``, ``pom.xml``, ``build.gradle`` ...). ENV, ARG, WORKDIR, LABEL, USER, EXPOSE, VOLUME,
STOPSIGNAL, HEALTHCHECK, ENTRYPOINT and CMD are kept.

Nothing is converted when the image's Java version cannot be read from its tag (``maven:3``),
when the container runs the build tool or a JDK tool (``mvn spring-boot:run``, ``javac``), or when
the jar to run cannot be found; the finding says why.

## Why
A JDK with Maven or Gradle, the local repository (~/.m2) and the sources weigh several hundred MB
more than a JRE and a jar.

## Example
```dockerfile
FROM maven:3.9-eclipse-temurin-17
WORKDIR /app
COPY . .
RUN mvn -B package -DskipTests
CMD ["java", "-jar", "target/app.jar"]
```
becomes
```dockerfile
FROM maven:3.9-eclipse-temurin-17 AS build
WORKDIR /app
COPY . .
RUN mvn -B package -DskipTests

FROM eclipse-temurin:17-jre
WORKDIR /app
COPY --from=build /app/target/app.jar /app/target/app.jar
CMD ["java", "-jar", "target/app.jar"]
```

## Fix safety
Unsafe: the runtime has a JRE only (no javac, jar, Maven or Gradle) and a different operating
system image; an application that compiles code or calls those tools at run time breaks.
"""

from __future__ import annotations

import posixpath

from dopt.transforms._multistage import (
    Analysis,
    MultiStageRule,
    Plan,
    Position,
    RuntimeImage,
    command_dirs,
    copy_data_files,
    instruction_commands,
    join_path,
)

TOOLS = {"mvn": "maven", "mvnw": "maven", "gradle": "gradle", "gradlew": "gradle"}


class JavaMultiStage(MultiStageRule):
    code = "DO604"
    name = "java-multi-stage"
    summary = "Single-stage Java build: the image ships the JDK and the build tool"
    ecosystem = "java"
    priority = 50

    def _builds(self, analysis: Analysis) -> list[tuple[str, str | None, Position]]:
        """Each packaging run: the build tool, the folder it runs in and where in the build."""
        goals = set(analysis.templates["java"].list("package-goals")) or {"package"}
        goals |= {str(g) for g in analysis.templates["java"].section.get("package-goals", ())}
        found = []
        for step in analysis.runs:
            for command, cwd in command_dirs(step):
                words = [w.value or "" for w in command.words]
                if not words:
                    continue
                tool = TOOLS.get(posixpath.basename(words[0]))
                if tool and any(w.split(":")[-1] in goals for w in words[1:] if not w.startswith("-")):
                    found.append((tool, cwd, step.position(command)))
        return found

    def claims(self, analysis: Analysis, image: RuntimeImage) -> bool:
        return bool(self._builds(analysis))

    def links_system_libraries(self, analysis: Analysis, plan: Plan) -> bool:
        return False

    def runtime_available(self, name: str, analysis: Analysis, plan: Plan) -> bool | None:
        return True if name in ("java", "keytool") else None

    def plan(self, analysis: Analysis, image: RuntimeImage, plan: Plan) -> None:
        template = analysis.templates["java"]
        outputs = template.section.get("outputs", {})
        builds = self._builds(analysis)
        jars = self._jars(analysis)
        if jars:
            built = builds[-1][2]
            for jar in jars:
                if any(ch in jar for ch in "*?["):
                    plan.copy(jar, "the jars the container runs", built, dest=posixpath.dirname(jar) + "/")
                else:
                    plan.copy(jar, "the jar the container runs", built)
                plan.artifacts.append(jar)
        else:
            for tool, workdir, at in builds:
                folder = join_path(workdir, str(outputs.get(tool, "target")))
                if folder is None:
                    plan.problem("the build runs in a folder dopt cannot resolve")
                    return
                plan.copy(folder, f"the {tool} build output", at)
                plan.artifacts.append(folder)
        if not copy_data_files(analysis, plan, template.list("source-files")):
            plan.notes.append("no build context to look at: copies no data files, only the build output")

    def _jars(self, analysis: Analysis) -> list[str]:
        """Jars named after ``-jar`` (or on ``-cp``) by CMD/ENTRYPOINT, as absolute paths."""
        found = []
        for ins in analysis.instructions_named("ENTRYPOINT", "CMD"):
            for command in instruction_commands(ins):
                if posixpath.basename(command.name) != "java":
                    continue
                args = list(command.args)
                for flag in ("-jar", "-cp", "-classpath", "--class-path"):
                    if flag in args and args.index(flag) + 1 < len(args):
                        value = args[args.index(flag) + 1]
                        for entry in value.split(":"):
                            if entry and "$" not in entry and entry.endswith(".jar"):
                                path = join_path(analysis.final_workdir, entry)
                                if path:
                                    found.append(path)
        return list(dict.fromkeys(found))
